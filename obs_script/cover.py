"""The privacy cover on the GPU: the filter's source drawn as a coarse mosaic; and the
"not swapping" badge drawn over a source passed through.

Drawn where the engine has no swap to show and a privacy mode (core.privacy) is on: a
model loading or failed, an engine error, a stalled worker, a source just shown again, or
no script code loaded at all (registration's fallback). It needs nothing from the engine:
libobs renders the filter's target into the filter's own texture
(obs_source_process_filter_begin) and a small shader averages each block of it, so it costs
the graphics thread one render of the source, like any OBS effect filter. The blocks match
core.privacy.cover (COVER_BLOCKS across the shorter side).

The badge: where a filter showing the real face ("original") cannot swap because something
failed, the source is drawn as it is but for a small red square with a white cross in the
label's corner - a sign on the preview and the stream that the swap is off, outside the
filter's dialog. Its technique passes every other pixel through.

Graphics thread only (video_render). Imported once per process, like registration: the
effect it creates lives as long as OBS's graphics.
"""

from __future__ import annotations

import ctypes as C

from core.privacy import cover_block_px
from obs_script import libobs as L

SAMPLES = 4  # per block side: 16 bilinear taps average each block


def _effect_source() -> bytes:
    taps = "\n".join(
        f"\tsum += image.Sample(cover_sampler, corner + float2({(i + 0.5) / SAMPLES}, "
        f"{(j + 0.5) / SAMPLES}) * block);"
        for j in range(SAMPLES) for i in range(SAMPLES))
    return f"""
uniform float4x4 ViewProj;
uniform texture2d image;
uniform float2 block;
uniform float4 badge;

sampler_state cover_sampler {{
\tFilter   = Linear;
\tAddressU = Clamp;
\tAddressV = Clamp;
}};

struct VertInOut {{
\tfloat4 pos : POSITION;
\tfloat2 uv  : TEXCOORD0;
}};

VertInOut VSDefault(VertInOut vert_in)
{{
\tVertInOut vert_out;
\tvert_out.pos = mul(float4(vert_in.pos.xyz, 1.0), ViewProj);
\tvert_out.uv  = vert_in.uv;
\treturn vert_out;
}}

float4 PSBadge(VertInOut vert_in) : TARGET
{{
\tfloat4 color = image.Sample(cover_sampler, vert_in.uv);
\tfloat2 p = (vert_in.uv - badge.xy) / (badge.zw - badge.xy);
\tif (p.x < 0.0 || p.x > 1.0 || p.y < 0.0 || p.y > 1.0)
\t\treturn color;
\tfloat stroke = min(abs(p.x - p.y), abs(p.x + p.y - 1.0));
\tif (stroke < 0.09 && p.x > 0.22 && p.x < 0.78)
\t\treturn float4(1.0, 1.0, 1.0, 1.0);
\treturn float4(0.8, 0.08, 0.08, 1.0);
}}

float4 PSCover(VertInOut vert_in) : TARGET
{{
\tfloat2 corner = floor(vert_in.uv / block) * block;
\tfloat4 sum = float4(0.0, 0.0, 0.0, 0.0);
{taps}
\treturn sum / {SAMPLES * SAMPLES}.0;
}}

technique Draw
{{
\tpass
\t{{
\t\tvertex_shader = VSDefault(vert_in);
\t\tpixel_shader  = PSCover(vert_in);
\t}}
}}

technique Badge
{{
\tpass
\t{{
\t\tvertex_shader = VSDefault(vert_in);
\t\tpixel_shader  = PSBadge(vert_in);
\t}}
}}
""".encode()


class _Vec2(C.Structure):
    _fields_ = [("x", C.c_float), ("y", C.c_float)]


class _Vec4(C.Structure):
    _fields_ = [("x", C.c_float), ("y", C.c_float), ("z", C.c_float), ("w", C.c_float)]


_effect: int | None = None
_block_param: int | None = None
_badge_param: int | None = None
draws = 0  # covers drawn (status and tests)
badges = 0  # badges drawn


def _load() -> bool:
    global _effect, _block_param, _badge_param
    if _effect is None:
        _effect = L.gs_effect_create(_effect_source(), b"face_swap_cover.effect", None) or 0
        if _effect:
            _block_param = L.gs_effect_get_param_by_name(_effect, b"block")
            _badge_param = L.gs_effect_get_param_by_name(_effect, b"badge")
        else:
            L.log(L.LOG_ERROR, "the privacy cover's shader did not compile")
    return bool(_effect)


def draw(filter_source: int, width: int, height: int) -> bool:
    """Draw the filter's input as a mosaic; False when it could not (then nothing is drawn
    and the source stays blank for this frame: still nothing of the face shows)."""
    global draws
    if not width or not height or not _load():
        return False
    if not L.obs_source_process_filter_begin(filter_source, L.GS_RGBA,
                                             L.OBS_NO_DIRECT_RENDERING):
        return False
    side = cover_block_px(width, height)
    block = _Vec2(side / width, side / height)
    L.gs_effect_set_vec2(_block_param, C.byref(block))
    L.obs_source_process_filter_end(filter_source, _effect, width, height)
    draws += 1
    return True


def badge(filter_source: int, width: int, height: int, rect: tuple[int, int, int, int]) -> bool:
    """Draw the filter's input as it is with the "not swapping" badge in `rect` (x0, y0,
    x1, y1 px); False when it could not (the caller passes the source through instead)."""
    global badges
    if not width or not height or not _load():
        return False
    if not L.obs_source_process_filter_begin(filter_source, L.GS_RGBA,
                                             L.OBS_NO_DIRECT_RENDERING):
        return False
    x0, y0, x1, y1 = rect
    place = _Vec4(x0 / width, y0 / height, x1 / width, y1 / height)
    L.gs_effect_set_vec4(_badge_param, C.byref(place))
    L.obs_source_process_filter_tech_end(filter_source, _effect, width, height, b"Badge")
    badges += 1
    return True
