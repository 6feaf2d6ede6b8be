"""The ``histogram`` model of ``model_inference`` (FACTS 12: version ``intensities``, no layer): an image embedding
made of colour and intensity histograms, computed offline with numpy, so that similarity search and UMAP maps work
without any model of the user's own.

The vector (:data:`HISTOGRAM_NDIM` = 256 float32 values, unit L2 norm) is two blocks:

* a joint HSV colour histogram, 12 hue x 4 saturation x 4 value bins (192 values): which colours, how vivid,
  how bright;
* a 64-bin histogram of the luma Y = 0.2989 R + 0.5870 G + 0.1140 B (FACTS 12's grayscale): the intensities.

Each block is a distribution (counts / pixels); the vector is the element-wise square root of each, weighted by
sqrt(1/2), concatenated. The square root (Hellinger map) makes the dot product of two vectors their Bhattacharyya
coefficient, so cosine similarity and Euclidean distance between vectors compare histograms sensibly, and the norm
is 1 by construction (the vector is divided by its norm once more to remove float rounding).

Pixels: the image is decoded as a thumbnail of at most :data:`HISTOGRAM_SIZE` per side (JPEGs decode at 1/2, 1/4
or 1/8 scale directly, so large photos are cheap), with the same mode handling as thumbnails (16-bit and float
samples to 8 bits, palettes expanded, alpha composited onto white). Gray images have hue and saturation 0. The
result depends only on the pixels and the Pillow version: the same image gives the same vector.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

from scenebase.media.budget import DECODE_BUDGET, DecodeBudget, DecodeTooLarge
from scenebase.media.images import (
    ImageDecodeError,
    _describe_image,
    _finish_8bit,
    _for_output,
    _load,
    _prepare_thumbnail,
    _thumbnail_peak,
    _working_image,
)
from scenebase.media.luma import LUMA_WEIGHTS

__all__ = [
    "HISTOGRAM_MODEL",
    "HISTOGRAM_NDIM",
    "HISTOGRAM_SIZE",
    "HISTOGRAM_VERSION",
    "histogram_embedding",
    "histogram_of_image",
]

HISTOGRAM_MODEL = "histogram"
HISTOGRAM_VERSION = "intensities"
HUE_BINS, SATURATION_BINS, VALUE_BINS = 12, 4, 4
LUMA_BINS = 64
HISTOGRAM_NDIM = HUE_BINS * SATURATION_BINS * VALUE_BINS + LUMA_BINS
#: pixels are counted on a thumbnail fitting in this square (enough for a stable histogram, cheap to decode)
HISTOGRAM_SIZE = 128
_BLOCK_WEIGHT = np.float32(np.sqrt(0.5))
_LUMA_WEIGHTS = np.array(LUMA_WEIGHTS, dtype=np.float32)


def histogram_embedding(
    data: bytes, *, name: str | None = None, budget: DecodeBudget = DECODE_BUDGET
) -> npt.NDArray[np.float32]:
    """The histogram embedding of a JPEG/PNG/TIFF image (bytes): :data:`HISTOGRAM_NDIM` float32 values, unit norm.

    Unusable data raises :class:`~scenebase.media.images.ImageDecodeError` naming ``name``; the decode's memory is
    reserved from ``budget`` first, as for thumbnails."""
    im, target, _ = _prepare_thumbnail(data, (HISTOGRAM_SIZE, HISTOGRAM_SIZE), "JPEG", name)
    try:
        with budget.reserve(_thumbnail_peak(im, target, False, "JPEG"), _describe_image(im, name)):
            _load(im, name)
            source_mode = im.mode
            work = _working_image(im)
            if work.size != target:
                work = work.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
            rgb = _for_output(_finish_8bit(work, source_mode, False), "JPEG")
            return histogram_of_image(rgb)
    except DecodeTooLarge as e:
        raise ImageDecodeError(f"image too large to decode: {e.problem}", name=name, image_format=im.format) from None


def histogram_of_image(image: Image.Image) -> npt.NDArray[np.float32]:
    """The embedding of an already decoded image (used as it is, at its size; converted to RGB first)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if rgb.width == 0 or rgb.height == 0:
        raise ValueError(f"an image without pixels ({rgb.width}x{rgb.height}) has no histogram")
    pixels = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
    hsv = np.asarray(rgb.convert("HSV"), dtype=np.uint16).reshape(-1, 3)  # each channel 0..255
    hue = hsv[:, 0] * HUE_BINS >> 8
    saturation = hsv[:, 1] * SATURATION_BINS >> 8
    value = hsv[:, 2] * VALUE_BINS >> 8
    colour_bins = (hue * SATURATION_BINS + saturation) * VALUE_BINS + value
    colour = np.bincount(colour_bins, minlength=HUE_BINS * SATURATION_BINS * VALUE_BINS).astype(np.float32)

    luma = pixels.astype(np.float32) @ _LUMA_WEIGHTS  # 0..255
    luma_bins = np.minimum((luma * (LUMA_BINS / 256.0)).astype(np.int64), LUMA_BINS - 1)
    intensity = np.bincount(luma_bins, minlength=LUMA_BINS).astype(np.float32)

    count = np.float32(pixels.shape[0])
    vector = np.concatenate([np.sqrt(colour / count), np.sqrt(intensity / count)]) * _BLOCK_WEIGHT
    vector /= np.linalg.norm(vector)  # already 1 up to rounding; exact for cosine indexes that assume it
    return vector.astype(np.float32, copy=False)
