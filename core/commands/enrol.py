"""`python -m core enrol PHOTO... --name NAME -o people.json`: keep who may be swapped.

The file holds face descriptors (core.identity), never the photos; `swap`, `live` and
`bench` take it with `--people FILE` (and `--only PHOTO` enrols on the fly).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from core import identity
from core.errors import FaceSwapError
from core.imageio import make_folder, partial_path
from core.recognise import Recogniser

HELP = "enrol a person's face from photos (faces=enrolled swaps only enrolled people)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("photos", nargs="+", type=Path,
                        help="photos of the person alone, looking at the camera (2-5 photos "
                             "in different light enrol best)")
    parser.add_argument("--name", required=True, help="who this is (e.g. me, co-host)")
    parser.add_argument("--model", default="",
                        help="this person's own model (default: the filter's / --model)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="people file (JSON); an existing one gains this person")
    parser.add_argument("--device", default="cpu", help="device of the recogniser")


def run(args: argparse.Namespace) -> int:
    people = identity.read_people(args.output) if args.output.is_file() else []
    recogniser = Recogniser(args.device)
    descriptors = np.stack([identity.descriptor_of_photo(photo, recogniser)
                            for photo in args.photos])
    people = identity.with_person(people, identity.Person(args.name, descriptors, args.model))
    make_folder(args.output.parent)
    partial = partial_path(args.output)
    try:
        partial.write_text(identity.encode(people), encoding="utf-8")
        os.replace(partial, args.output)
    except OSError as exc:
        raise FaceSwapError(f"cannot write {args.output}: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)
    for person in people:
        print(f"{person.name}: {len(person.descriptors)} face(s), model "
              f"{person.model or '(the filter model)'}")
    print(f"enrolled {args.name} from {len(args.photos)} photo(s): {args.output}")
    return 0
