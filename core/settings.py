"""Swap settings shared by the CLI, the OBS filter and the benchmark: one source of truth."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

FACE_SELECTIONS = ("largest", "all", "centre", "id", "enrolled")
GUESTS = ("show", "blur")  # faces="enrolled": what faces of people not enrolled get
COLOR_TRANSFERS = ("none", "rct", "hist")
# which masks are multiplied into the blend mask: the model's mask of your face ("source"),
# its mask of the swapped face ("celeb"), the outline of your face's landmarks ("hull");
# "model" = source x celeb, "both" = all three
MASK_MODES = ("both", "hull", "model", "source", "celeb", "source_hull", "celeb_hull")
INTERPOLATIONS = ("bilinear", "bicubic", "lanczos4")  # the swapped face warped into the frame
ON_LOST = ("original", "hold", "pixelate")
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
# numeric settings and their valid closed ranges (erode may be negative: it then dilates)
RANGES = (("threads", 0, 64), ("face_id", 0, 999), ("max_faces", 1, 16), ("morph", 0.0, 1.0),
           ("erode", -50.0, 50.0), ("blur", 0.0, 100.0), ("opacity", 0.0, 1.0),
           ("face_scale", 0.1, 10.0), ("face_offset_x", -1.0, 1.0), ("face_offset_y", -1.0, 1.0),
           ("smoothing", 0.0, 1.0), ("detect_interval", 1, 300), ("hold_ms", 0, 60_000),
           ("fade_ms", 0, 2_000), ("max_yaw", 0.0, 90.0), ("max_pitch", 0.0, 90.0),
           ("label_size", 2.0, 25.0), ("face_coverage", 0.1, 8.0),
           ("align_x_offset", -10.0, 10.0), ("align_y_offset", -10.0, 10.0),
           ("presharpen", 0.0, 10.0), ("pre_gamma_r", 0.01, 4.0), ("pre_gamma_g", 0.01, 4.0),
           ("pre_gamma_b", 0.01, 4.0), ("post_gamma_r", 0.01, 4.0),
           ("post_gamma_g", 0.01, 4.0), ("post_gamma_b", 0.01, 4.0),
           ("color_compression", 0.0, 127.0))


# Settings that change which model files and sessions are loaded: a change rebuilds the
# pipeline (the rest apply live), and models are prepared and cached by these.
# (people: its per-person models are loaded with the pipeline, and a new enrolment is judged
# afresh)
REBUILD_FIELDS = ("model", "models_dir", "reference", "device", "threads", "people")


@dataclass(frozen=True)
class SwapSettings:
    model: str = "persona:default"  # registry name or path to a model file
    models_dir: str = ""  # a user folder searched for models besides models/ and $FACESWAP_MODELS
    reference: str = ""  # reference portrait for persona / inswapper ("" = model default)
    device: str = "cpu"  # "cpu", "cuda:0", "tensorrt:0", "dml:0", "coreml"
    threads: int = 0  # CPU intra-op threads; 0 = leave cores for OBS (see core.runtime)
    faces: str = "largest"  # one of FACE_SELECTIONS
    face_id: int = 0  # used when faces == "id"
    max_faces: int = 4  # faces followed (and swapped) at once; each costs a FaceMesh run
    people: str = ""  # enrolled people for faces="enrolled" (core.identity.encode: no pictures)
    guests: str = "show"  # one of GUESTS
    morph: float = 0.75  # AMP .dfm morph_value
    # the .dfm crop, framed as DeepFaceLive's face aligner frames it (core.swap.framing)
    face_coverage: float = 2.2  # crop side in mean-face unit squares
    align_x_offset: float = 0.0  # crop centre shift, in unit squares (+ = image-right)
    align_y_offset: float = 0.0  # (+ = towards the chin; DeepFaceLive's -0.08 is built in)
    exclude_moving_parts: bool = True  # fit the crop to the points that keep still
    head_mode: bool = False  # the whole head: coverage +1, up 0.5, follows the head's turn
    freeze_z_rotation: bool = False  # keep the crop level whatever the head's roll
    # what the .dfm is given and what it gives back (core.adjust): DeepFaceLive's swapper
    presharpen: float = 0.0  # unsharp mask amount on the crop
    pre_gamma_r: float = 1.0  # per-channel gamma of the crop (> 1 brightens)
    pre_gamma_g: float = 1.0
    pre_gamma_b: float = 1.0
    post_gamma_r: float = 1.0  # per-channel gamma of the swapped face
    post_gamma_g: float = 1.0
    post_gamma_b: float = 1.0
    two_pass: bool = False  # the swapped face through the model once more
    mask: str = "both"  # one of MASK_MODES
    erode: float = 5.0  # mask erode, % of face size (negative dilates)
    blur: float = 10.0  # mask feather, % of face size
    color_transfer: str = "rct"  # one of COLOR_TRANSFERS
    interpolation: str = "bilinear"  # one of INTERPOLATIONS
    color_compression: float = 0.0  # fewer colour levels in the swapped face (0 = off)
    opacity: float = 1.0
    face_scale: float = 1.0
    face_offset_x: float = 0.0  # fraction of face size
    face_offset_y: float = 0.0
    keep_eyes: bool = False  # persona: keep the live eyes
    keep_mouth: bool = True  # persona: keep the live inner mouth
    keep_hands: bool = True  # a hand over a face stays in front of the swap (core.hands)
    keep_objects: bool = True  # streams: what else covers a face stays in front (core.objects)
    smoothing: float = 0.5  # landmark smoothing strength 0 (off) .. 1 (strong)
    detect_interval: int = 10  # full detection at least every N frames
    on_lost: str = "original"  # one of ON_LOST (see core.privacy)
    hold_ms: int = 500  # how long "hold" keeps the last swap, then as "pixelate"
    fade_ms: int = 150  # cross-fade between the swap and the on_lost view (pose limits, loss)
    identity_guard: bool = True  # privacy modes: pixelate a face whose swap still looks like you
    max_yaw: float = 0.0  # degrees left/right past which a face is not swapped; 0 = model's
    max_pitch: float = 0.0  # degrees up/down, likewise; 0 = the model family's default
    label: bool = True  # "AI face swap" disclosure label
    label_corner: str = "bottom-right"  # one of CORNERS
    # label height, % of the frame's shorter side: at a quarter of a 1080p canvas (a 720p
    # source scaled 0.75) its box is 32 px and its text 18 px high, legible on the stream
    label_size: float = 6.0

    def __post_init__(self) -> None:
        for name, allowed in (("faces", FACE_SELECTIONS), ("guests", GUESTS),
                              ("color_transfer", COLOR_TRANSFERS),
                              ("mask", MASK_MODES), ("interpolation", INTERPOLATIONS),
                              ("on_lost", ON_LOST), ("label_corner", CORNERS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"setting {name}={value!r}; expected one of {', '.join(allowed)}")
        for name, low, high in RANGES:
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"setting {name}={value!r}; must be within {low}..{high}")

    def with_pairs(self, pairs: list[str]) -> SwapSettings:
        """A copy with "name=value" strings applied (the CLI's --set), typed per field."""
        types = field_types()
        changes: dict[str, object] = {}
        for pair in pairs:
            name, sep, text = pair.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in types:
                raise ValueError(f"--set {pair!r}: expected NAME=VALUE with NAME one of "
                                 f"{', '.join(types)}")
            kind = types[name]
            try:
                if kind is bool:
                    if text.lower() not in ("1", "0", "true", "false", "on", "off", "yes", "no"):
                        raise ValueError(text)
                    changes[name] = text.lower() in ("1", "true", "on", "yes")
                else:
                    changes[name] = kind(text)
            except ValueError:
                raise ValueError(f"--set {pair!r}: {text!r} is not a {kind.__name__}") from None
        return self.with_changes(**changes)

    def with_changes(self, **changes: object) -> SwapSettings:
        """A copy with some fields replaced; unknown names are an error."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)


def field_types() -> dict[str, type]:
    """Each setting's name and value type (bool, int, float or str), in field order: what
    hosts that store settings as typed key/value pairs (the CLI's --set, OBS data) go by."""
    defaults = SwapSettings()
    return {f.name: type(getattr(defaults, f.name)) for f in fields(SwapSettings)}
