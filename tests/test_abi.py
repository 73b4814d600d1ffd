"""The ctypes side of the OBS script against libobs's own headers, for every ABI OBS ships on:
Linux x86_64 (gcc), Windows x64 (mingw-w64) and macOS arm64 and x86_64 (clang, a macOS
target). One C++ file is generated from obs_script/libobs.py and compiled (syntax only) for
each target; static_asserts in it compare

- every field offset of the structs we mirror (obs_source_info's prefix, obs_source_frame,
  obs_video_info's prefix, vec2) and the size we register with;
- every function we bind: the number of parameters, and the class (integer, floating point,
  pointer) and size of each parameter and of the return value;
- every callback type in obs_source_info we fill, the same way.

A wrong layout would crash OBS on load on that platform; this fails the build instead. Our
ctypes structs use only fixed-size fields (pointers, c_int, c_uint8..64, c_float, c_bool),
whose size and alignment are the same on these 64-bit ABIs (also asserted), so their offsets
as computed here are the ones the Python side builds there too.
"""

from __future__ import annotations

import ctypes as C
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core import ROOT

pytestmark = pytest.mark.libobs

OBS_INCLUDE = Path("/usr/include/obs")
SIMDE = Path("/usr/include/simde")
MACOS_STUBS = ROOT / "tests" / "abi" / "macos"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

TARGETS = {
    "linux-x86_64": ["g++"],
    "windows-x64": ["x86_64-w64-mingw32-g++-posix"],
    "macos-arm64": ["clang++", "-target", "arm64-apple-macos11"],
    "macos-x86_64": ["clang++", "-target", "x86_64-apple-macos10.15"],
}


def _libobs():
    """obs_script.libobs as OBS would load it: it finds libobs in this process or on disk."""
    sys.path.insert(0, str(ROOT))
    try:
        from obs_script import libobs
    except OSError as exc:
        pytest.skip(f"libobs not loadable here: {exc}")
    return libobs


POINTERS = (C.c_void_p, C.c_char_p, C.c_wchar_p)
# ctypes type -> (class, size): class 0 void, 1 integer (or enum), 2 floating point, 3 pointer
FIXED = {C.c_bool: (1, 1), C.c_uint8: (1, 1), C.c_int8: (1, 1), C.c_uint16: (1, 2),
         C.c_int16: (1, 2), C.c_int: (1, 4), C.c_uint: (1, 4), C.c_uint32: (1, 4),
         C.c_int32: (1, 4), C.c_uint64: (1, 8), C.c_int64: (1, 8), C.c_longlong: (1, 8),
         C.c_ulonglong: (1, 8), C.c_size_t: (1, 8), C.c_float: (2, 4), C.c_double: (2, 8)}


def kind(ctype) -> tuple[int, int]:
    if ctype is None:
        return 0, 0
    if ctype in POINTERS or issubclass(ctype, C._Pointer):
        return 3, 8
    return FIXED[ctype]


TRAITS = """
template <class T> struct Kind { static constexpr int cls = __is_enum(T) ? 1 : -1;
                                 static constexpr int size = sizeof(T); };
template <class T> struct Kind<T *> { static constexpr int cls = 3;
                                      static constexpr int size = sizeof(T *); };
template <> struct Kind<void> { static constexpr int cls = 0; static constexpr int size = 0; };
#define INTEGER(T) template <> struct Kind<T> { static constexpr int cls = 1; \\
                                                static constexpr int size = sizeof(T); };
INTEGER(bool) INTEGER(char) INTEGER(signed char) INTEGER(unsigned char) INTEGER(short)
INTEGER(unsigned short) INTEGER(int) INTEGER(unsigned) INTEGER(long) INTEGER(unsigned long)
INTEGER(long long) INTEGER(unsigned long long)
template <> struct Kind<float> { static constexpr int cls = 2; static constexpr int size = 4; };
template <> struct Kind<double> { static constexpr int cls = 2; static constexpr int size = 8; };
template <class F> struct Sig;
template <class R, class... A> struct Sig<R (*)(A...)> {
    static constexpr int arity = sizeof...(A);
    using ret = R;
    template <int I, class H, class... T> struct At {
        using type = typename At<I - 1, T...>::type; };
    template <class H, class... T> struct At<0, H, T...> { using type = H; };
    template <int I> using arg = typename At<I, A..., void>::type;
};
#define CHECK(F, I, CLS, SIZE, WHAT) \\
    static_assert(Kind<typename Sig<F>::template arg<I>>::cls == CLS && \\
                  Kind<typename Sig<F>::template arg<I>>::size == SIZE, WHAT);
#define CHECK_RET(F, CLS, SIZE, WHAT) \\
    static_assert(Kind<typename Sig<F>::ret>::cls == CLS && \\
                  Kind<typename Sig<F>::ret>::size == SIZE, WHAT);
"""


def _signature(name: str, fptr_type: str, argtypes, restype) -> list[str]:
    lines = [f"static_assert(Sig<{fptr_type}>::arity == {len(argtypes)}, "
             f'"{name}: {len(argtypes)} parameters");']
    cls, size = kind(restype)
    lines.append(f'CHECK_RET({fptr_type}, {cls}, {size}, "{name}: return type")')
    for i, arg in enumerate(argtypes):
        cls, size = kind(arg)
        lines.append(f'CHECK({fptr_type}, {i}, {cls}, {size}, "{name}: parameter {i + 1}")')
    return lines


def check_source(libobs) -> str:
    """The C++ file of static_asserts for the Python side as it is."""
    lines = ["#include <stddef.h>", "#include <obs.h>", "#include <util/dstr.h>",
             "#include <util/platform.h>", TRAITS,
             'static_assert(sizeof(void *) == 8 && sizeof(int) == 4 && sizeof(bool) == 1 && '
             'sizeof(float) == 4 && alignof(unsigned long long) == 8, "a 64-bit ABI");']
    for struct, ours in (("obs_source_info", libobs.SourceInfo),
                         ("obs_source_frame", libobs.SourceFrame),
                         ("obs_video_info", libobs.VideoInfo), ("vec2", libobs.Vec2)):
        for field, _ in ours._fields_:
            if field == "rest":  # room for a tail we do not read: the size below
                continue
            offset = getattr(ours, field).offset
            lines.append(f"static_assert(offsetof(struct {struct}, {field}) == {offset}, "
                         f'"{struct}.{field} at {offset}");')
    last, _ = libobs.SourceInfo._fields_[-1]
    lines.append(f"static_assert(offsetof(struct obs_source_info, {last}) + sizeof(void *) == "
                 f'{C.sizeof(libobs.SourceInfo)}, "the obs_source_info prefix we register");')
    lines.append(f"static_assert(sizeof(struct obs_video_info) <= {C.sizeof(libobs.VideoInfo)}, "
                 '"obs_video_info fits what we hand obs_get_video_info");')
    for field, prototype in _callbacks(libobs).items():
        fptr = f"decltype(obs_source_info::{field})"
        lines += _signature(f"obs_source_info.{field}", fptr, prototype._argtypes_,
                            prototype._restype_)
    for name, fn in sorted(_functions(libobs).items()):
        lines += _signature(name, f"decltype(&{name})", fn.argtypes or [], fn.restype)
    return "\n".join(lines) + "\nint main() { return 0; }\n"


def _functions(libobs) -> dict:
    """The libobs functions obs_script binds with argtypes (variadic blog excluded)."""
    found = {}
    for value in vars(libobs).values():
        name = getattr(value, "__name__", "")  # a CFUNCTYPE callback of ours has none
        if isinstance(value, C._CFuncPtr) and value.argtypes is not None and name \
                and name != "blog":
            found[name] = value
    return found


def _callbacks(libobs) -> dict:
    """obs_source_info field -> the CFUNCTYPE we fill it with (registration's table)."""
    return {"get_name": libobs.GET_NAME, "create": libobs.CREATE, "destroy": libobs.DESTROY,
            "get_defaults": libobs.GET_DEFAULTS, "get_properties": libobs.GET_PROPERTIES,
            "update": libobs.UPDATE, "video_render": libobs.VIDEO_RENDER,
            "filter_video": libobs.FILTER_VIDEO}


def _command(target: str, source: Path, includes: Path) -> list[str]:
    command = [*TARGETS[target], "-std=c++17", "-fsyntax-only", f"-I{OBS_INCLUDE}",
               f"-I{includes}"]
    if target.startswith("macos"):  # no Apple SDK here: clang's builtin headers + stubs
        resource = subprocess.run(["clang", "-print-resource-dir"], capture_output=True,
                                  text=True, check=True).stdout.strip()
        command += ["-ffreestanding", "-nostdinc", "-nostdinc++", "-isystem",
                    f"{resource}/include", "-isystem", str(MACOS_STUBS)]
    return [*command, str(source)]


@pytest.mark.parametrize("target", list(TARGETS))
def test_ctypes_layouts_and_signatures_match_libobs_on_every_abi(target, tmp_path):
    compiler = TARGETS[target][0]
    missing = [what for what, present in ((compiler, shutil.which(compiler)),
                                          ("libobs-dev", OBS_INCLUDE.is_dir()),
                                          ("libsimde-dev", SIMDE.is_dir())) if not present]
    if missing:
        message = (f"needs {', '.join(missing)} (install/system_deps.sh installs them: "
                   "g++, g++-mingw-w64-x86-64-posix, clang, libobs-dev)")
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    libobs = _libobs()
    source = tmp_path / "abi.cpp"
    source.write_text(check_source(libobs), encoding="utf-8")
    includes = tmp_path / "include"
    includes.mkdir()
    (includes / "simde").symlink_to(SIMDE)  # libobs's headers want it; not the system dirs
    built = subprocess.run(_command(target, source, includes), capture_output=True, text=True,
                           timeout=300)
    errors = [line for line in built.stderr.splitlines() if "error" in line]
    assert built.returncode == 0, "\n".join(errors[:20]) or built.stderr[-2000:]


def test_the_check_covers_every_binding():
    """Every struct field and bound function is in the generated file (and a wrong one
    would not compile: the table below is the check's own check)."""
    libobs = _libobs()
    source = check_source(libobs)
    assert source.count("offsetof(struct obs_source_info,") == len(libobs.SourceInfo._fields_) + 1
    assert source.count("offsetof(struct obs_source_frame,") == len(libobs.SourceFrame._fields_)
    assert source.count("offsetof(struct obs_video_info,") == len(libobs.VideoInfo._fields_) - 1
    for name in _functions(libobs):
        assert f'"{name}: return type"' in source
    assert len(_functions(libobs)) > 80
