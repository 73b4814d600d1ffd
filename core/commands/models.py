"""`python -m core models [--json] [--dir DIR ...]`: what --model accepts, and why files don't."""

from __future__ import annotations

import argparse
import json

from core import registry

HELP = "list swap models and personas (models/, $FACESWAP_MODELS, --dir) and unusable files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dir", action="append", default=[], metavar="DIR",
                        help=f"extra model folder (repeatable; also ${registry.ENV_VAR}, "
                             "separated by the OS path separator)")


def run(args: argparse.Namespace) -> int:
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
