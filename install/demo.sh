#!/usr/bin/env bash
# The main job on the built-in default: sets up .venv if needed (idempotent), then swaps the
# built-in demo clip with the default persona and prints where the video and picture are.
# Extra arguments go to `python -m core demo` (e.g. install/demo.sh --out /tmp/faceswap).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
install/setup.sh
exec .venv/bin/python -m core demo "$@"
