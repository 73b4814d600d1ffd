"""`python -m core devices`: list execution targets; --check proves one by running a model."""

from __future__ import annotations

import argparse
import json

import onnxruntime as ort

from core import devices, runtime
from core.errors import InputError
from core.modelfiles import DETECTOR_SHORT, builtin_model
from core.target import Target

HELP = "list the devices models can run on (CPU, CUDA, TensorRT, DirectML, CoreML)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", metavar="DEVICE",
                        help="load and run the shipped detector on DEVICE (e.g. cuda:0) and "
                             "report the provider it really runs on; exit 1 on CPU fallback")


def _check(device: str) -> dict[str, object]:
    if Target(device).served:
        raise InputError(f"--check runs a model on a device of this machine; for the "
                         f"inference server {device} use `models --device` or `bench --device`")
    session, info = runtime.open_session(builtin_model(DETECTOR_SHORT), device)
    ms = runtime.warm_up(session, runs=3)
    return {"requested": device, "device": info.device, "provider": info.provider,
            "reason": info.reason, "detector_ms": round(ms, 2),
            "first_run_ms": round(info.first_run_ms, 1)}


def run(args: argparse.Namespace) -> int:
    listed = devices.list_devices()
    check = _check(args.check) if args.check else None
    if args.json:
        report: dict[str, object] = {
            "onnxruntime": ort.__version__,
            "providers": ort.get_available_providers(),
            "devices": [d.as_dict() for d in listed],
        }
        if check:
            report["check"] = check
        print(json.dumps(report, indent=2))
    else:
        print(f"onnxruntime {ort.__version__}, providers: "
              f"{', '.join(ort.get_available_providers())}")
        for d in listed:
            print(f"  {d.label}")
        if check:
            print(f"check {check['requested']}: runs on {check['provider']} "
                  f"({check['device']}), detector {check['detector_ms']} ms"
                  + (f" (first run at load {check['first_run_ms']} ms)"
                     if check["first_run_ms"] else ""))
            if check["reason"]:
                print(f"  {check['reason']}")
    return 1 if check and check["reason"] else 0
