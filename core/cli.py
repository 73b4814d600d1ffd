"""`python -m core <command>`: each command lives in its own module under core/commands/."""

from __future__ import annotations

import argparse
import importlib
import sys

from core.errors import FaceSwapError

# command name -> module exposing `HELP`, `add_arguments(parser)` and `run(args) -> int`
COMMANDS = {
    "detect": "core.commands.detect",
    "swap": "core.commands.swap",
    "models": "core.commands.models",
    "devices": "core.commands.devices",
    "live": "core.commands.live",
    "bench": "core.commands.bench",
    "demo": "core.commands.demo",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core",
                                     description="Face swap engine: files, live, benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except FaceSwapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
