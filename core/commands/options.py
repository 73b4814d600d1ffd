"""Command-line option types with bounds: a value out of range is a one-line error (exit 2)
from argparse, before any work starts. The bounds are those of core.settings where a
setting is behind the option."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core import identity
from core.errors import FaceSwapError
from core.presets import Presets
from core.recognise import Recogniser
from core.settings import RANGES, SwapSettings
from core.target import Target

MAX_FRAME = (7680, 4320)  # 8K UHD: the largest frame a benchmark or a camera is asked for
SETTING_RANGES = {name: (low, high) for name, low, high in RANGES}


def bounded(kind: type, low: float, high: float):
    """An argparse `type`: a `kind` value within low..high."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n' if kind is int else ''} "
                                             f"{kind.__name__}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not within {low:g}..{high:g}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def setting(name: str):
    """The argparse type of the numeric setting `name`, with the setting's own range."""
    low, high = SETTING_RANGES[name]
    return bounded(type(low), low, high)


def frame_size(text: str) -> tuple[int, int]:
    """"1280x720" -> (1280, 720), within 64x64 .. MAX_FRAME."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WxH, e.g. 1280x720") from None
    if not (64 <= width <= MAX_FRAME[0] and 64 <= height <= MAX_FRAME[1]):
        raise argparse.ArgumentTypeError(
            f"{text} is not within 64x64..{MAX_FRAME[0]}x{MAX_FRAME[1]}")
    return width, height


frame_size.__name__ = "size"


def frame_sizes(text: str) -> list[tuple[int, int]]:
    """"640x480,1280x720" -> [(640, 480), (1280, 720)], each as frame_size."""
    return [frame_size(item.strip()) for item in text.split(",")]


frame_sizes.__name__ = "sizes"


def add_tuning(parser: argparse.ArgumentParser) -> None:
    """--set and --presets: every other setting, and per-model presets; --only and --people:
    who is swapped (they imply faces=enrolled)."""
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="any other setting, e.g. --set color_transfer=hist --set erode=3 "
                             "(names: core/settings.py SwapSettings)")
    parser.add_argument("--presets", type=Path, metavar="FILE",
                        help="per-model presets (JSON: model name -> settings, as the OBS "
                             "filter keeps them): the chosen model's come before --set")
    parser.add_argument("--only", action="append", default=[], type=Path, metavar="PHOTO",
                        help="swap only this person (a photo of them alone; repeatable: "
                             "several photos of one person); guests are left as they are")
    parser.add_argument("--people", type=Path, metavar="FILE",
                        help="swap only the people enrolled in FILE (python -m core enrol), "
                             "each with their own model where they have one")


def tuned(base: SwapSettings, args: argparse.Namespace) -> SwapSettings:
    """`base` with the chosen model's preset (--presets) and then --set applied; a bad file
    or value is a one-line FaceSwapError."""
    try:
        settings = Presets.read(args.presets).recall(base) if args.presets else base
        settings = settings.with_pairs(args.set)
    except ValueError as exc:
        raise FaceSwapError(str(exc)) from None
    return enrolled(settings, args)


def enrolled(settings: SwapSettings, args: argparse.Namespace) -> SwapSettings:
    """`settings` with the people of --people and the person of --only photos enrolled (and
    faces=enrolled); unchanged without them."""
    if not args.only and not args.people:
        if settings.faces == "enrolled" and not settings.people:
            raise FaceSwapError("faces=enrolled: nobody is enrolled (--people FILE from "
                                "python -m core enrol, or --only PHOTO)")
        return settings
    people = identity.read_people(args.people) if args.people else []
    if args.only:
        recogniser = Recogniser(Target(settings.device).local, settings.threads)
        descriptors = np.stack([identity.descriptor_of_photo(photo, recogniser)
                                for photo in args.only])
        people = identity.with_person(people, identity.Person("you", descriptors))
    if not people:
        raise FaceSwapError(f"{args.people}: nobody is enrolled in it")
    return settings.with_changes(people=identity.encode(people), faces="enrolled")
