"""Luma statistics behind the image properties (FACTS 12): mean and spread of the grayscale Y and the variance of
its 3x3 Laplacian, computed at full resolution with the exact FACTS 12 formulas, fast.

Y = 0.2989 R + 0.5870 G + 0.1140 B on 0..255 (a single-channel image is its own Y). The Laplacian is
[[0,1,0],[1,-4,1],[0,1,0]] over the valid region ((H-2) x (W-2), no padding).

Why it is fast and still exact: for 8-bit pixels, 10^4 * Y = 2989 R + 5870 G + 1140 B is an integer below 2^24, and
so is every partial sum of its Laplacian; float32 holds such integers exactly, so the per-pixel work runs in float32
(half the memory traffic of float64, one fused matrix-vector product for Y) without any rounding. Only the sums of
squares are widened to float64. Y is shifted by an integer near its mean first, which changes neither the Laplacian
nor the variance but keeps the sums of squares small (no cancellation). The image is processed in bands of rows
that stay in the CPU caches, and numpy releases the GIL inside each operation, so two threads computing two
images use two cores. The result equals the straightforward float64 computation to within float64 rounding
(about 1e-15 relative).

High-bit-depth images (16-bit, 32-bit, float) are rare and take the straightforward float64 path
(:func:`float_luma_stats`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

LUMA_WEIGHTS = (0.2989, 0.5870, 0.1140)
#: the luma weights times 10^4: integers, so 8-bit luma times 10^4 is an integer
_SCALED_WEIGHTS = np.array([2989.0, 5870.0, 1140.0], dtype=np.float32)
_SCALE = 1e4
#: pixels per band of rows: big enough that numpy's per-call overhead is small, small enough to stay in L2/L3
BAND_PIXELS = 65536

FloatArray = npt.NDArray[np.float64]
UInt8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class LumaStats:
    """Statistics of the grayscale Y (0..255 scale) of one image."""

    mean: float
    #: population standard deviation of Y
    std: float
    #: population variance of the 3x3 Laplacian of Y over the valid region; 0.0 below 3x3 (or when not asked)
    laplacian_variance: float


def eight_bit_luma_stats(pixels: UInt8Array, laplacian: bool = True) -> LumaStats:
    """Statistics of 8-bit pixels: (H, W) gray, or (H, W, C) with R, G, B first (further channels, e.g. alpha, are
    ignored). ``laplacian=False`` skips the Laplacian (reported as 0.0)."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] < 3):
        raise ValueError(f"expected uint8 pixels of shape (H, W) or (H, W, >=3), got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"an image without pixels ({width}x{height}) has no statistics")
    color = pixels.ndim == 3
    scale = _SCALE if color else 1.0
    shift = _shift(pixels)
    rows = max(1, BAND_PIXELS // width)
    band = _Band(rows, width, color)
    with_laplacian = laplacian and height >= 3 and width >= 3
    sum_d = sum_d2 = sum_l2 = 0.0
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        first, last = max(0, top - 1), min(height, bottom + 1)  # one row of context above and below
        luma = band.luma(pixels[first:last], shift)
        own = luma[(top - first) * width : (bottom - first) * width]
        d, d2 = band.sum_and_squares(own)
        sum_d += d
        sum_d2 += d2
        lo, hi = max(1, top), min(height - 1, bottom)  # rows of this band that are Laplacian centres
        if with_laplacian and hi > lo:
            sum_l2 += band.laplacian_squares(luma, (lo - first) * width, (hi - first) * width, width)
    count = height * width
    mean_d = sum_d / count
    variance = max(sum_d2 / count - mean_d * mean_d, 0.0)
    laplacian_variance = 0.0
    if with_laplacian:
        centres = (height - 2) * (width - 2)
        mean_l = _laplacian_sum(pixels) / centres
        laplacian_variance = max(sum_l2 / centres - mean_l * mean_l, 0.0) / (scale * scale)
    return LumaStats((shift + mean_d) / scale, variance**0.5 / scale, laplacian_variance)


def float_luma_stats(luma: FloatArray, laplacian: bool = True) -> LumaStats:
    """Statistics of a luma already on 0..255 as float64 (high-bit-depth images), computed straightforwardly."""
    if luma.size == 0:
        raise ValueError("an image without pixels has no statistics")
    laplacian_variance = 0.0
    if laplacian and luma.shape[0] >= 3 and luma.shape[1] >= 3:
        lap = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4.0 * luma[1:-1, 1:-1]
        laplacian_variance = float(lap.var())
    return LumaStats(float(luma.mean()), float(luma.std()), laplacian_variance)


class _Band:
    """Work buffers for one band of rows, reused band after band (no allocation, no page faults per band)."""

    def __init__(self, rows: int, width: int, color: bool) -> None:
        self.width = width
        self.color = color
        self.channels = np.empty((rows + 2, width, 3), dtype=np.float32) if color else None
        self.y = np.empty((rows + 2) * width, dtype=np.float32)
        self.lap = np.empty(rows * width, dtype=np.float32)
        self.centre = np.empty(rows * width, dtype=np.float32)
        self.wide = np.empty(rows * width, dtype=np.float64)

    def luma(self, pixels: UInt8Array, shift: float) -> npt.NDArray[np.float32]:
        """Scaled luma minus ``shift`` of the band's rows, flattened (exact: integers below 2^24)."""
        n_rows = pixels.shape[0]
        y = self.y[: n_rows * self.width]
        if self.channels is not None:
            channels = self.channels[:n_rows]
            np.copyto(channels, pixels[..., :3], casting="unsafe")
            np.matmul(channels, _SCALED_WEIGHTS, out=y.reshape(n_rows, self.width))
        else:
            np.copyto(y.reshape(n_rows, self.width), pixels, casting="unsafe")
        y -= np.float32(shift)
        return y

    def sum_and_squares(self, values: npt.NDArray[np.float32]) -> tuple[float, float]:
        wide = self.wide[: values.size]
        np.copyto(wide, values)
        total = float(wide.sum())
        np.multiply(wide, wide, out=wide)
        return total, float(wide.sum())

    def laplacian_squares(self, y: npt.NDArray[np.float32], start: int, end: int, width: int) -> float:
        """Sum of the squared Laplacian at the flat positions start..end of ``y`` (whole rows with a row of context
        on each side). Neighbours are read at +-1 and +-width; the first and last column of each row wrap around
        and are zeroed, since they are not centres."""
        n = end - start
        lap, centre = self.lap[:n], self.centre[:n]
        np.add(y[start - width : end - width], y[start + width : end + width], out=lap)
        lap += y[start - 1 : end - 1]
        lap += y[start + 1 : end + 1]
        np.multiply(y[start:end], np.float32(4.0), out=centre)
        lap -= centre
        grid = lap.reshape(n // width, width)
        grid[:, 0] = 0.0
        grid[:, -1] = 0.0
        return self.sum_and_squares(lap)[1]


def _scaled_luma(pixels: UInt8Array) -> FloatArray:
    """Exact scaled luma of a few pixels in float64 (for the shift and the Laplacian's border terms)."""
    values = pixels.astype(np.float64)
    if pixels.ndim == 3:
        return values[..., :3] @ _SCALED_WEIGHTS.astype(np.float64)
    return values


def _shift(pixels: UInt8Array) -> float:
    """An integer near the mean scaled luma, from about a thousand evenly spread pixels."""
    height, width = pixels.shape[:2]
    sample = pixels[:: max(1, height // 32), :: max(1, width // 32)]
    return float(np.rint(_scaled_luma(sample).mean()))


def _laplacian_sum(pixels: UInt8Array) -> float:
    """Sum of the scaled Laplacian over all centres, from the border rows and columns alone: the neighbour sums
    telescope, leaving rows 0, 1, H-2, H-1 and columns 0, 1, W-2, W-1 (exact, in integers)."""
    height, width = pixels.shape[:2]
    rows = _scaled_luma(pixels[[0, 1, height - 2, height - 1], 1:-1]).sum(axis=1)
    cols = _scaled_luma(pixels[1:-1][:, [0, 1, width - 2, width - 1]]).sum(axis=0)
    return float(rows[0] - rows[1] - rows[2] + rows[3] + cols[0] - cols[1] - cols[2] + cols[3])
