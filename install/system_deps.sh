#!/usr/bin/env bash
# System packages the end-to-end tests need: a real OBS Studio, a virtual X server and the
# system Python's venv module (for the test inference server).
# Installs them with apt-get when missing (as root or with passwordless sudo); otherwise says
# what to install and exits 1. Safe to run again: does nothing when both are present.
# Also tries libobs-dev (OBS's C headers, a small download), a Windows cross compiler
# (mingw-w64), clang and g++: only the test that checks our ctypes layouts and signatures against
# those headers for Linux, Windows and macOS needs them (tests/test_abi.py; in CI it fails
# without them), so failing to get them here is a note, not an error.
set -euo pipefail
missing=()
command -v obs >/dev/null 2>&1 || missing+=(obs-studio)
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
# the test Triton server's venv is made with the system Python (tests/triton_env.py)
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
optional=()
[ -f /usr/include/obs/obs.h ] || optional+=(libobs-dev)
command -v g++ >/dev/null 2>&1 || optional+=(g++)
command -v x86_64-w64-mingw32-g++-posix >/dev/null 2>&1 || optional+=(g++-mingw-w64-x86-64-posix)
command -v clang++ >/dev/null 2>&1 || optional+=(clang)
[ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0
skip_optional() {  # the optional package alone is missing and cannot be installed: fine
  echo "system_deps: note: $1; the ABI test will be skipped" >&2; exit 0
}
if ! command -v apt-get >/dev/null 2>&1; then
  [ ${#missing[@]} -eq 0 ] && skip_optional "no apt-get to install ${optional[*]}"
  echo "system_deps: please install ${missing[*]} with your package manager" >&2; exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    [ ${#missing[@]} -eq 0 ] && skip_optional "need root to install ${optional[*]}"
    echo "system_deps: need root to install ${missing[*]}: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
echo "system_deps: installing ${missing[*]} ${optional[*]} (apt-get)"
# a failed update (an expired Release file on a testing suite, a flaky mirror) leaves the lists
# already there, which usually still install: try them rather than give up here
$sudo apt-get update -qq || echo "system_deps: note: apt-get update failed; using the package lists already there" >&2
if [ ${#missing[@]} -gt 0 ]; then
  # with recommends, as verified: OBS under Xvfb needs the Mesa drivers and Qt plugins they bring
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ${#optional[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null \
    || echo "system_deps: note: could not install ${optional[*]}; the ABI test will be skipped" >&2
fi
