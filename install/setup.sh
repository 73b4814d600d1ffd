#!/usr/bin/env bash
# One-command setup on Linux/macOS: runs install/setup.py (the one setup, also on Windows:
# `py -3.11 install\setup.py`) with a Python found on PATH that pyproject.toml's
# requires-python allows. Idempotent.
#   install/setup.sh            choose onnxruntime by hardware (nvidia-smi answers -> GPU build)
#   install/setup.sh --cpu      force the CPU build of onnxruntime
#   install/setup.sh --gpu      force onnxruntime-gpu (CUDA)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# requires-python = ">=3.LOW,<3.HIGH" (the one place the range is written)
read -r low high < <(sed -n 's/^requires-python = ">=3\.\([0-9]*\),<3\.\([0-9]*\)"/\1 \2/p' \
  "$root/pyproject.toml")
for cand in python3 $(seq -f "python3.%g" "$low" "$((high - 1))"); do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c \
      "import sys, venv; sys.exit(not ($low <= sys.version_info[1] < $high and sys.version_info[0] == 3))" \
      2>/dev/null; then
    exec "$cand" "$root/install/setup.py" "$@"
  fi
done
echo "setup: need Python 3.$low-3.$((high - 1)) with the venv module (Debian: apt-get install python3-venv)" >&2
exit 1
