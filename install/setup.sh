#!/usr/bin/env bash
# One-command setup: .venv at the repo root with the runtime and test dependencies.
# Idempotent: a stamp records what was installed; a second run with the same inputs does nothing.
#   install/setup.sh            choose onnxruntime by hardware (nvidia-smi answers -> GPU build)
#   install/setup.sh --cpu      force the CPU build of onnxruntime
#   install/setup.sh --gpu      force onnxruntime-gpu (CUDA)
# onnxruntime-gpu comes with NVIDIA's CUDA and cuDNN wheels (no CUDA toolkit needed): the CUDA 13
# build for drivers 580 and newer, the last CUDA 12 build (1.26) for older drivers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"

choice=auto
for arg in "$@"; do
  case "$arg" in
    --cpu) choice=cpu ;;
    --gpu) choice=gpu ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup: unknown option '$arg' (use --cpu or --gpu)" >&2; exit 2 ;;
  esac
done
if [ "$choice" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    choice=gpu; reason="nvidia-smi found an NVIDIA GPU"
  else
    choice=cpu; reason="no NVIDIA driver answered (nvidia-smi)"
  fi
else
  reason="forced by --$choice"
fi

find_python() {
  # OBS on Debian/Ubuntu embeds the system Python: prefer its version so OBS can import our venv.
  local want="" cand
  if [ -x /usr/bin/python3 ]; then want="$(/usr/bin/python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"; fi
  for cand in "python$want" python3.11 python3.12 python3.13 python3.14 python3.10 python3; do
    [ -n "$cand" ] || continue
    command -v "$cand" >/dev/null 2>&1 || continue
    if "$cand" -c 'import sys, venv; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 14)))' 2>/dev/null; then
      echo "$cand"; return 0
    fi
  done
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  py="$(find_python)" || { echo "setup: need Python 3.10-3.14 with the venv module (Debian: apt-get install python3-venv)" >&2; exit 1; }
  echo "setup: creating .venv with $("$py" --version 2>&1) ($(command -v "$py"))"
  "$py" -m venv "$venv"
fi

extra=$choice
if [ "$choice" = gpu ]; then
  driver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n1 || true)"
  if [ -n "$driver" ] && [ "${driver%%.*}" -lt 580 ] 2>/dev/null; then
    extra=gpu-cuda12; reason="$reason; driver $driver predates CUDA 13 (580): CUDA 12 build"
  fi
fi

stamp="$venv/.setup-stamp"
want_stamp="$extra $(sha256sum "$root/pyproject.toml" | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
  echo "setup: .venv is up to date (onnxruntime: $extra)"
  exit 0
fi

echo "setup: onnxruntime build: $extra ($reason)"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
# The CPU and GPU builds provide the same module: remove the other one before installing.
other=onnxruntime-gpu; [ "$choice" = gpu ] && other=onnxruntime
"${pip[@]}" uninstall -y "$other" >/dev/null 2>&1 || true
"${pip[@]}" install -e "$root[$extra,test]"
"$venv/bin/python" -c 'import cv2, numpy, onnxruntime as ort; print("setup: ok - numpy", numpy.__version__, "| opencv", cv2.__version__, "| onnxruntime", ort.__version__, ort.get_available_providers())'
echo "$want_stamp" > "$stamp"
