"""Cutting a region out of an image: object thumbnails (objects are crops of their parent image, FACTS 6.8).

Decoding goes through the image library's guarded opener (pixel budget, format sniffing), so a crop is as safe
as a thumbnail of the whole image.
"""

from __future__ import annotations

import io

from PIL import Image

from scenebase.media import images
from scenebase.media.images import ImageDecodeError, fit_within

#: largest crop thumbnail side for presets (tiny, small); full-size crops are capped by the image itself
CROP_PRESETS = {"tiny": (100, 100), "small": (300, 300), "full_size_png": None}
CROP_FORMATS = {"tiny": "JPEG", "small": "JPEG", "full_size_png": "PNG"}


def clip_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` in whole pixels inside a ``width`` x ``height`` image, at least 1x1."""
    x0, y0, x1, y1 = box
    left = min(max(0, int(x0)), max(0, width - 1))
    top = min(max(0, int(y0)), max(0, height - 1))
    right = max(left + 1, min(width, int(-(-x1 // 1))))
    bottom = max(top + 1, min(height, int(-(-y1 // 1))))
    return left, top, right, bottom


def crop_thumbnail(
    data: bytes,
    box: tuple[float, float, float, float],
    max_size: tuple[int, int] | None,
    fmt: str = "JPEG",
    *,
    name: str | None = None,
) -> tuple[bytes, int, int]:
    """The region ``box`` (x_min, y_min, x_max, y_max in pixels, clipped to the image) of an encoded image, fitted
    into ``max_size`` (None: the crop's own size), encoded as ``fmt``. Raises ImageDecodeError."""
    im = images._open(data, name)  # the guarded opener: format sniffing and the pixel budget
    images._load(im, name)
    region = clip_box(box, im.width, im.height)
    work = images._working_image(im).crop(region)
    target = work.size if max_size is None else fit_within(work.size, max_size)
    if work.size != target:
        work = work.resize(target, Image.Resampling.LANCZOS)
    work = images._for_output(images._finish_8bit(work, im.mode, False), fmt)
    out = io.BytesIO()
    try:
        work.save(out, fmt, **({"quality": images.JPEG_QUALITY} if fmt == "JPEG" else {}))
    except (OSError, ValueError) as e:
        raise ImageDecodeError(f"cannot encode the crop: {e}", name=name) from None
    return out.getvalue(), work.width, work.height
