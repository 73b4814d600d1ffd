#!/usr/bin/env bash
# Prepare OBS Studio on Linux for the Face Swap filter.
#   install/obs_setup.sh               check that OBS's embedded Python can import the engine
#                                      from .venv (runs install/setup.sh first if needed)
#   install/obs_setup.sh --add-script  also add obs_script/face_swap.py to OBS's current scene
#                                      collection (a backup is kept; OBS must not be running)
# obs_script/face_swap.py puts .venv's site-packages ahead of OBS's system packages itself;
# this script proves that works with the Python OBS was built for, before OBS is started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
script="$root/obs_script/face_swap.py"
config="${OBS_CONFIG_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/obs-studio}"

add_script=false
for arg in "$@"; do
  case "$arg" in
    --add-script) add_script=true ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "obs_setup: unknown option '$arg' (use --add-script)" >&2; exit 2 ;;
  esac
done

die() { echo "obs_setup: $*" >&2; exit 1; }

command -v obs >/dev/null 2>&1 || die "OBS Studio not found (Debian/Ubuntu: sudo apt-get install obs-studio)"

# The Python OBS embeds: the libpython its scripting module links against.
module=""
for dir in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
  if [ -f "$dir/obs-scripting/_obspython.so" ]; then module="$dir/obs-scripting/_obspython.so"; break; fi
done
[ -n "$module" ] || die "this OBS has no Python scripting (_obspython.so not found); install a build with Python support"
pyver="$(ldd "$module" | sed -n 's/.*libpython\([0-9]*\.[0-9]*\).*/\1/p' | head -n 1)"
[ -n "$pyver" ] || die "cannot tell which Python $module was built for (ldd shows no libpython)"
obs_python="$(command -v "python$pyver" || true)"
[ -n "$obs_python" ] || die "OBS uses Python $pyver but python$pyver is not installed (apt-get install python$pyver python$pyver-venv)"
echo "obs_setup: OBS $(obs --version 2>/dev/null | sed 's/^OBS Studio - //') embeds Python $pyver"

[ -x "$root/.venv/bin/python" ] || "$root/install/setup.sh"
venv_ver="$("$root/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$venv_ver" = "$pyver" ] || die ".venv uses Python $venv_ver but OBS embeds $pyver: remove .venv and run install/setup.sh with python$pyver first on PATH"

# Import the engine the way the script does, in a Python of the version OBS embeds.
"$obs_python" - "$root" <<'PY' || die "OBS's Python cannot import the engine (see above)"
import sys
from pathlib import Path

root = Path(sys.argv[1])
sys.path.insert(0, str(root))
from obs_script import env

problem = env.activate(root)
if problem:
    sys.exit(problem)
import cv2, numpy, onnxruntime
from core.service import SwapService  # noqa: F401

print(f"obs_setup: ok - numpy {numpy.__version__} ({Path(numpy.__file__).parent}), opencv "
      f"{cv2.__version__}, onnxruntime {onnxruntime.__version__} "
      f"{onnxruntime.get_available_providers()}")
PY

$add_script || { echo "obs_setup: in OBS: Tools > Scripts > + > $script"; exit 0; }

"$obs_python" - "$config" "$script" <<'PY'
"""Add the script to OBS's current scene collection, with a backup; refuse while OBS runs."""
import configparser
import json
import os
import shutil
import sys
import time
from pathlib import Path

config, script = Path(sys.argv[1]), sys.argv[2]


def obs_running_here() -> bool:
    """An OBS of this user whose HOME is ours (another HOME is another configuration)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "obs":
                continue
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        homes = [e[5:].decode() for e in environ if e.startswith(b"HOME=")]
        if not homes or homes[0] == os.environ.get("HOME"):
            return True
    return False


if obs_running_here():
    sys.exit("obs_setup: OBS is running: close it first (it rewrites its scene collection on exit)")
ini = configparser.ConfigParser(interpolation=None, strict=False)
ini.optionxform = str
if not ini.read(config / "global.ini", encoding="utf-8-sig"):
    sys.exit(f"obs_setup: no {config / 'global.ini'}: start OBS once, close it, run this again")
name = ini.get("Basic", "SceneCollectionFile", fallback="")
collection = config / "basic" / "scenes" / f"{name}.json"
if not name or not collection.is_file():
    sys.exit(f"obs_setup: current scene collection not found ({collection})")
data = json.loads(collection.read_text(encoding="utf-8"))
scripts = data.setdefault("modules", {}).setdefault("scripts-tool", [])
if any(Path(s.get("path", "")) == Path(script) for s in scripts):
    print(f"obs_setup: {collection.name} already loads {script}")
    sys.exit(0)
backup = collection.with_name(f"{collection.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
shutil.copy2(collection, backup)
scripts.append({"path": script, "settings": {}})
tmp = collection.with_suffix(".json.tmp")
tmp.write_text(json.dumps(data, indent=4), encoding="utf-8")
os.replace(tmp, collection)
print(f"obs_setup: added {script} to {collection} (backup: {backup.name})")
PY
