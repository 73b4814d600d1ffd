"""Face Swap for OBS Studio: add this file in Tools > Scripts (Python).

It puts the project's .venv ahead of OBS's own packages, registers the "Face Swap" video
filter (id `face_swap`) and shows the engine's status in this description. Everything
else lives in the obs_script package beside this file.

"Reload Scripts" re-executes this file: the glue modules are re-imported fresh, except
obs_script.registration (libobs keeps its callbacks for the whole process), the privacy
cover it draws (obs_script.cover) and the engine (`core`, whose model caches the filters
share).
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_PERSISTENT = {"obs_script", "obs_script.libobs", "obs_script.registration",
               "obs_script.cover"}

for _name in [n for n in sys.modules if n.startswith("obs_script.") and n not in _PERSISTENT]:
    del sys.modules[_name]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from obs_script import env  # noqa: E402  (stdlib only: it makes the rest importable)

PROBLEM = env.activate(_ROOT)

if PROBLEM:
    for _name in ("script_load", "script_unload", "script_update", "script_save",
                  "script_properties"):  # left from an earlier load of this module
        globals().pop(_name, None)

    def script_description():
        return f"<b>Face Swap</b> is not loaded: {PROBLEM}"
else:
    from obs_script import script as _script  # noqa: E402

    script_description = _script.script_description
    script_unload = _script.script_unload
    script_update = _script.script_update
    script_save = _script.script_save
    script_properties = _script.script_properties

    def script_load(settings):
        _script.script_load(settings, sys.modules[__name__])
