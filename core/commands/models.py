"""`python -m core models [--json] [--dir DIR ...] [--device triton://HOST:PORT]`: what
--model accepts (on this machine, or on an inference server), and why files don't."""

from __future__ import annotations

import argparse
import json

from core import registry, triton

HELP = "list swap models and personas (models/, $FACESWAP_MODELS, --dir) and unusable files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dir", action="append", default=[], metavar="DIR",
                        help=f"extra model folder (repeatable; also ${registry.ENV_VAR}, "
                             "separated by the OS path separator)")
    parser.add_argument("--device", default="", metavar="triton://HOST:PORT",
                        help="list the swap models of this inference server instead")


def _server_models(args: argparse.Namespace) -> int:
    """The server's models with what each is (a failed check is listed with its reason);
    where the server does not allow listing, that, as one line."""
    server = triton.parse(args.device)
    try:
        entries = registry.scan_server(args.device)
    except triton.ServerError as exc:
        if "does not allow listing" not in str(exc):
            raise
        print(json.dumps({"server": server.id, "models": None, "note": str(exc)})
              if args.json else f"{exc} (--model NAME)")
        return 0
    if args.json:
        print(json.dumps({"server": server.id, "models": [e.to_dict() for e in entries]},
                         indent=2))
        return 0
    if not entries:
        print(f"{server.id} lists no models in its repository index (a model loaded "
              "outside it can still be named with --model)")
        return 0
    print(f"swap models on {server.id} (--model NAME --device {server.id}):")
    for e in entries:
        print(f"  {e.name}  {e.describe()}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.device:
        return _server_models(args)
    folders = registry.model_dirs(args.dir)
    entries = registry.scan(args.dir)
    if args.json:
        print(json.dumps({"dirs": [str(f) for f in folders],
                          "models": [e.to_dict() for e in entries]}, indent=2))
        return 0
    print("model folders: " + ", ".join(
        str(f) + ("" if f.is_dir() else " (missing)") for f in folders))
    width = max(len(e.name) for e in entries)
    for group, title in ((lambda e: e.is_swapper, "swap models (--model NAME)"),
                         (lambda e: e.usable and not e.is_swapper, "helper models"),
                         (lambda e: not e.usable, "unusable files")):
        chosen = [e for e in entries if group(e)]
        if not chosen:
            continue
        print(f"\n{title}:")
        for e in chosen:
            where = f"  {e.path}" if e.path else ""
            print(f"  {e.name:<{width}}  {e.describe()}{where}")
    return 0
