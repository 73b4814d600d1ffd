#!/usr/bin/env bash
# One-command setup on Linux/macOS: runs install/setup.py (the one setup, also on Windows:
# `py -3.11 install\setup.py`) with a Python 3.10-3.14 found on PATH. Idempotent.
#   install/setup.sh            choose onnxruntime by hardware (nvidia-smi answers -> GPU build)
#   install/setup.sh --cpu      force the CPU build of onnxruntime
#   install/setup.sh --gpu      force onnxruntime-gpu (CUDA)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for cand in python3 python3.11 python3.12 python3.13 python3.14 python3.10; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c \
      'import sys, venv; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 14)))' 2>/dev/null; then
    exec "$cand" "$root/install/setup.py" "$@"
  fi
done
echo "setup: need Python 3.10-3.14 with the venv module (Debian: apt-get install python3-venv)" >&2
exit 1
