"""The histogram embedding of model_inference(model='histogram') (FACTS 12)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from scenebase.media.histogram_embedding import (
    HISTOGRAM_NDIM,
    HUE_BINS,
    LUMA_BINS,
    SATURATION_BINS,
    VALUE_BINS,
    histogram_embedding,
    histogram_of_image,
)
from scenebase.media.images import ImageDecodeError

COLOUR_BINS = HUE_BINS * SATURATION_BINS * VALUE_BINS


def _encode(pixels: np.ndarray, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def _scene(seed: int, size: tuple[int, int] = (240, 320)) -> np.ndarray:
    """A smooth random colour field (blocks of colour upscaled), like a photo rather than noise."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    return np.asarray(small.resize((size[1], size[0]), Image.Resampling.BICUBIC))


def test_shape_norm_and_determinism() -> None:
    data = _encode(_scene(1), "JPEG", quality=90)
    vector = histogram_embedding(data)
    assert vector.shape == (HISTOGRAM_NDIM,) == (256,)
    assert vector.dtype == np.float32
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-6)
    assert (vector >= 0).all()
    np.testing.assert_array_equal(vector, histogram_embedding(data))


def test_a_uniform_gray_image_fills_exactly_two_bins() -> None:
    vector = histogram_embedding(_encode(np.full((20, 30), 128, dtype=np.uint8)))
    expected = np.zeros(HISTOGRAM_NDIM, dtype=np.float32)
    # hue 0, saturation 0, value 128 -> bin 128 * 4 // 256 = 2; luma 128 * 0.9999 (FACTS 12's weights sum to
    # 0.9999) = 127.99 -> bin 127.99 * 64 // 256 = 31
    expected[2] = expected[COLOUR_BINS + 31] = np.sqrt(0.5)
    np.testing.assert_allclose(vector, expected, atol=1e-7)


def test_the_blocks_are_square_roots_of_the_histograms() -> None:
    pixels = np.zeros((10, 10, 3), dtype=np.uint8)
    pixels[:, :5] = (255, 0, 0)  # pure red: hue 0, full saturation and value; luma 0.2989 * 255 = 76.2 -> bin 19
    pixels[:, 5:] = (0, 0, 255)  # pure blue: hue 170/256 -> bin 7; luma 29.07 -> bin 7
    vector = histogram_of_image(Image.fromarray(pixels))
    red_bin = (0 * SATURATION_BINS + 3) * VALUE_BINS + 3
    blue_bin = (7 * SATURATION_BINS + 3) * VALUE_BINS + 3
    assert set(np.flatnonzero(vector)) == {red_bin, blue_bin, COLOUR_BINS + 19, COLOUR_BINS + 7}
    np.testing.assert_allclose(vector[[red_bin, blue_bin]], np.sqrt(0.5 * 0.5), rtol=1e-6)
    assert LUMA_BINS == HISTOGRAM_NDIM - COLOUR_BINS


def test_the_same_scene_is_nearer_than_other_scenes() -> None:
    scene = _scene(7)
    original = histogram_embedding(_encode(scene, "JPEG", quality=95))
    smaller_png = histogram_embedding(_encode(np.asarray(Image.fromarray(scene).resize((160, 120)))))
    others = [histogram_embedding(_encode(_scene(seed), "JPEG", quality=95)) for seed in range(20, 30)]
    same = float(original @ smaller_png)
    assert same > 0.95
    assert all(float(original @ other) < same for other in others)


def test_other_modes_are_accepted() -> None:
    rgba = np.dstack([_scene(2), np.full((240, 320), 128, dtype=np.uint8)])
    sixteen = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    for data in (_encode(rgba), _encode(sixteen), _encode(_scene(3), "TIFF")):
        vector = histogram_embedding(data)
        assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-6)


def test_a_large_jpeg_is_summarised_from_a_small_decode() -> None:
    big = _scene(4, size=(2000, 3000))
    small = np.asarray(Image.fromarray(big).resize((128, 85), Image.Resampling.BILINEAR))
    near = float(histogram_embedding(_encode(big, "JPEG", quality=95)) @ histogram_embedding(_encode(small)))
    assert near > 0.95


def test_bad_bytes_name_the_file() -> None:
    with pytest.raises(ImageDecodeError, match=r"'frame\.png'.*not an image"):
        histogram_embedding(b"hello world, not pixels", name="frame.png")
    with pytest.raises(ImageDecodeError, match="empty"):
        histogram_embedding(b"", name="empty.jpg")
