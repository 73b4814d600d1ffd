"""`python -m core <command>`: each command lives in its own module under core/commands/."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import warnings

from core.errors import FaceSwapError, Terminated

# command name -> module exposing `HELP`, `add_arguments(parser)` and `run(args) -> int`
COMMANDS = {
    "detect": "core.commands.detect",
    "swap": "core.commands.swap",
    "models": "core.commands.models",
    "enrol": "core.commands.enrol",
    "devices": "core.commands.devices",
    "live": "core.commands.live",
    "bench": "core.commands.bench",
    "demo": "core.commands.demo",
    "triton-repo": "core.commands.triton_repo",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line ("error: ..."), exit code 2, like
    every other user error here (`--help` still prints the full usage)."""

    def error(self, message: str) -> None:
        self.exit(2, f"error: {self.prog.split()[-1]}: {message}\n")


def _one_line_warning(message, _category, *_args, **_kwargs) -> None:
    lines = str(message).strip().splitlines()
    print(f"warning: {lines[0] if lines else message}", file=sys.stderr)


def _terminate(signum, _frame) -> None:
    raise Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m core",
                           description="Face swap engine: files, live, benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=OneLineParser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a bad option (already reported in one line)
        return int(exc.code or 0)
    # SIGTERM ends a command the way Ctrl-C does: outputs are finished or removed, one line
    previous = signal.signal(signal.SIGTERM, _terminate)
    shown, warnings.showwarning = warnings.showwarning, _one_line_warning
    try:
        return args.run(args)
    except FaceSwapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
        warnings.showwarning = shown
