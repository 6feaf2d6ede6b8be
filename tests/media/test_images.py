"""scenebase.media.images: probe, corrupt/unsupported input, modes, thumbnails, image properties, bomb limit.

Real sample images are read from ../shared/data (see its MANIFEST.md); everything else is made in memory.
"""

from __future__ import annotations

import dataclasses
import io
import random
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from sample_data import SHARED_DATA, needs_shared_data
from scenebase.media import images as mi
from scenebase.media import luma
from scenebase.media.images import (
    PROPERTY_NAMES,
    THUMBNAIL_PRESETS,
    ImageDecodeError,
    content_type_for,
    custom_thumbnail,
    fit_within,
    image_properties,
    make_thumbnail,
    preset_thumbnail,
    probe_image,
)

DATA = SHARED_DATA
WEIGHTS = (0.2989, 0.5870, 0.1140)

# (path under DATA, width, height, format, mode) as listed in MANIFEST.md
REAL_IMAGES = [
    ("coco/datumaro/coco_instances/images/train/a.jpg", 10, 5, "JPEG", "RGB"),
    ("coco/datumaro/coco_instances/images/val/b.jpg", 5, 10, "JPEG", "RGB"),
    ("coco/datumaro/relaxed_coco/train_001.jpg", 10, 5, "JPEG", "RGB"),
    ("coco/datumaro/coco_panoptic/annotations/panoptic_train/a.png", 5, 5, "PNG", "RGB"),
    ("coco/datumaro/coco_panoptic/annotations/panoptic_val/b.png", 5, 10, "PNG", "RGB"),
    ("coco/panopticapi/panoptic_examples/000000142238.png", 640, 427, "PNG", "RGB"),
    ("coco/panopticapi/panoptic_examples/000000439180.png", 640, 360, "PNG", "RGB"),
    ("pointcloud/datumaro_kitti_raw/IMAGE_00/data/0000000000.png", 918, 516, "PNG", "RGBA"),
    ("pointcloud/datumaro_kitti_raw/IMAGE_00/data/0000000002.png", 912, 514, "PNG", "RGBA"),
    ("pointcloud/datumaro_kitti_3d/image_2/000001.png", 10, 10, "PNG", "RGB"),
    ("pointcloud/datumaro_supervisely_pointcloud/ds0/related_images/frame1_pcd/img2.png", 912, 514, "PNG", "RGBA"),
    ("timeseries/comma2k19_segment/preview.png", 1164, 874, "PNG", "RGB"),
]

needs_data = needs_shared_data


def all_real_images() -> list[Path]:
    if not DATA.is_dir():
        return []
    found = [p for root in ("coco", "pointcloud") for p in (DATA / root).rglob("*") if p.is_file()]
    return sorted(p for p in found if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff"))


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def decode(blob: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(blob))
    image.load()
    return image


def noise_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A well-formed PNG header claiming width x height (8-bit gray), with an empty IDAT and a proper IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )


def jpeg_with_size(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF0 header is patched to claim width x height."""
    data = bytearray(encode(noise_rgb(16, 16), "JPEG"))
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture
def jpeg_640x480() -> bytes:
    return encode(noise_rgb(640, 480), "JPEG", quality=90)


# --------------------------------------------------------------------------------------------------------------------
# probe: real files


@needs_data
@pytest.mark.parametrize(("rel", "width", "height", "fmt", "mode"), REAL_IMAGES, ids=[r[0] for r in REAL_IMAGES])
def test_probe_real_images_from_manifest(rel: str, width: int, height: int, fmt: str, mode: str) -> None:
    path = DATA / rel
    info = probe_image(path.read_bytes(), path.name)
    assert (info.width, info.height, info.format, info.mode) == (width, height, fmt, mode)
    assert info.extension == {"JPEG": "jpg", "PNG": "png"}[fmt]
    assert info.content_type == content_type_for(fmt)


@needs_data
@pytest.mark.parametrize("path", all_real_images(), ids=lambda p: str(p.relative_to(DATA)))
def test_probe_every_real_image_agrees_with_pillow(path: Path) -> None:
    data = path.read_bytes()
    info = probe_image(data, path.name)
    with Image.open(path) as reference:
        assert (info.width, info.height, info.format, info.mode) == (*reference.size, reference.format, reference.mode)
    assert probe_image(data, verify=False) == info


@needs_data
def test_real_images_are_found() -> None:
    found = all_real_images()
    assert any(p.suffix == ".jpg" for p in found)
    assert any(p.suffix == ".png" for p in found)


@needs_data
@pytest.mark.parametrize(
    ("rel", "small", "tiny"),
    [
        ("pointcloud/datumaro_kitti_raw/IMAGE_00/data/0000000000.png", (300, 169), (100, 56)),
        ("timeseries/comma2k19_segment/preview.png", (300, 225), (100, 75)),
        ("coco/panopticapi/panoptic_examples/000000142238.png", (300, 200), (100, 67)),
        ("coco/datumaro/coco_instances/images/train/a.jpg", (10, 5), (10, 5)),
        ("coco/datumaro/coco_instances/images/val/b.jpg", (5, 10), (5, 10)),
    ],
)
def test_presets_on_real_images(rel: str, small: tuple[int, int], tiny: tuple[int, int]) -> None:
    data = (DATA / rel).read_bytes()
    info = probe_image(data)
    for preset, expected in (("small", small), ("tiny", tiny)):
        blob, width, height, fmt = preset_thumbnail(data, preset)
        assert (width, height, fmt) == (*expected, "JPEG")
        out = decode(blob)
        assert (out.format, out.size, out.mode) == ("JPEG", expected, "RGB")
    blob, width, height, fmt = preset_thumbnail(data, "full_size_png")
    out = decode(blob)
    assert (fmt, out.format, out.size, (width, height)) == ("PNG", "PNG", (info.width, info.height), out.size)
    assert out.mode == info.mode  # RGB stays RGB, RGBA keeps its alpha


@needs_data
def test_properties_of_a_real_image_match_an_independent_computation() -> None:
    path = DATA / "pointcloud/datumaro_kitti_raw/IMAGE_00/data/0000000000.png"
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGBA"), dtype=np.float64)[..., :3]
    y = WEIGHTS[0] * rgb[..., 0] + WEIGHTS[1] * rgb[..., 1] + WEIGHTS[2] * rgb[..., 2]
    props = image_properties(path.read_bytes(), PROPERTY_NAMES)
    assert props["mean_brightness"] == pytest.approx(y.mean(), rel=1e-9)
    assert props["rms_contrast"] == pytest.approx((y / 255).std(), rel=1e-9)
    assert all(type(v) is float for v in props.values())


# --------------------------------------------------------------------------------------------------------------------
# probe: corrupt and unsupported input


def test_empty_bytes() -> None:
    with pytest.raises(ImageDecodeError, match="empty data"):
        probe_image(b"")


def test_random_bytes() -> None:
    with pytest.raises(ImageDecodeError, match="not an image") as excinfo:
        probe_image(random.Random(1234).randbytes(4096))
    assert excinfo.value.image_format is None


def test_jpeg_truncated_at_half(jpeg_640x480: bytes) -> None:
    half = jpeg_640x480[: len(jpeg_640x480) // 2]
    with pytest.raises(ImageDecodeError, match=r"'cam\.jpg': truncated JPEG \(no end-of-image marker FF D9") as exc:
        probe_image(half, "cam.jpg")
    assert (exc.value.name, exc.value.image_format) == ("cam.jpg", "JPEG")
    # without verify the header alone passes, and decoding still fails cleanly
    assert probe_image(half, verify=False).width == 640
    with pytest.raises(ImageDecodeError, match="corrupt or truncated JPEG data"):
        make_thumbnail(half, (100, 100))
    with pytest.raises(ImageDecodeError, match="corrupt or truncated JPEG data"):
        image_properties(half, ["mean_brightness"])


def test_jpeg_trailing_padding_is_tolerated_up_to_the_limit(jpeg_640x480: bytes) -> None:
    assert probe_image(jpeg_640x480 + b"\x00" * mi.JPEG_TRAILER_TOLERANCE).width == 640
    with pytest.raises(ImageDecodeError, match="truncated JPEG"):
        probe_image(jpeg_640x480 + b"\x00" * (mi.JPEG_TRAILER_TOLERANCE + 1))


@needs_data
def test_real_jpeg_truncated_at_half() -> None:
    data = (DATA / "coco/datumaro/coco_instances/images/train/a.jpg").read_bytes()
    # this tiny file is mostly header, so the cut lands inside the header
    with pytest.raises(ImageDecodeError, match=r"truncated JPEG|corrupt JPEG header"):
        probe_image(data[: len(data) // 2], "a.jpg")


def test_jpeg_with_garbage_after_soi() -> None:
    with pytest.raises(ImageDecodeError, match="corrupt JPEG header"):
        probe_image(b"\xff\xd8\xff" + bytes(100))


@needs_data
@pytest.mark.parametrize("cut", ["no_iend", "half"])
def test_png_truncated(cut: str) -> None:
    data = (DATA / "coco/panopticapi/panoptic_examples/000000142238.png").read_bytes()
    truncated = data[:-12] if cut == "no_iend" else data[: len(data) // 2]
    with pytest.raises(ImageDecodeError, match=r"truncated PNG \(no IEND chunk"):
        probe_image(truncated, "seg.png")


def test_png_with_bad_header_checksum() -> None:
    data = bytearray(encode(noise_rgb(8, 8), "PNG"))
    data[20] ^= 0xFF  # inside IHDR
    with pytest.raises(ImageDecodeError, match="corrupt PNG header"):
        probe_image(bytes(data))


def test_png_with_corrupt_pixel_data_passes_probe_but_not_decoding() -> None:
    data = bytearray(encode(noise_rgb(64, 48), "PNG"))
    idat = data.find(b"IDAT")
    data[idat + 4 : idat + 6] = b"\x00\x00"  # break the zlib stream header; the file is still complete
    blob = bytes(data)
    assert probe_image(blob).width == 64  # documented: verify catches truncation, not corrupt compressed data
    with pytest.raises(ImageDecodeError, match="corrupt or truncated PNG data"):
        make_thumbnail(blob, (10, 10))


@pytest.mark.parametrize("compression", [None, "tiff_deflate"])
def test_tiff_truncated(compression: str | None) -> None:
    params = {"compression": compression} if compression else {}
    data = encode(noise_rgb(64, 48), "TIFF", **params)
    assert probe_image(data).format == "TIFF"
    with pytest.raises(ImageDecodeError, match=r"truncated TIFF|corrupt TIFF header"):
        probe_image(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match=r"truncated TIFF|corrupt TIFF header"):
        probe_image(data[:-1])


@pytest.mark.parametrize(
    ("fmt", "name"), [("GIF", "anim.gif"), ("BMP", "scan.bmp"), ("WEBP", "photo.webp"), ("ICO", "favicon.ico")]
)
def test_unsupported_formats_are_named(fmt: str, name: str) -> None:
    data = encode(Image.new("RGB", (8, 8), (1, 2, 3)), fmt)
    with pytest.raises(ImageDecodeError) as excinfo:
        probe_image(data, name)
    message = str(excinfo.value)
    assert f"unsupported image format '{fmt}' (supported: JPEG, PNG, TIFF)" in message
    assert name in message
    assert excinfo.value.image_format == fmt
    with pytest.raises(ImageDecodeError, match=f"unsupported image format '{fmt}'"):
        make_thumbnail(data, (4, 4))


def test_gif_even_when_named_jpg() -> None:
    with pytest.raises(ImageDecodeError, match="unsupported image format 'GIF'"):
        probe_image(encode(Image.new("P", (4, 4)), "GIF"), "really.jpg")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is a text file, not a photo\n")
    with pytest.raises(ImageDecodeError) as excinfo:
        probe_image(path.read_bytes(), path.name)
    message = str(excinfo.value)
    assert message.startswith("'notes.jpg': not an image")
    assert "the extension '.jpg' suggests JPEG" in message
    assert "b'this is '" in message


def test_png_content_with_wrong_extension_is_fine() -> None:
    info = probe_image(encode(noise_rgb(8, 6), "PNG"), "mislabelled.jpg")
    assert (info.format, info.extension) == ("PNG", "png")


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="empty data"):
        probe_image(b"", "x.png")


# --------------------------------------------------------------------------------------------------------------------
# modes: probe and thumbnail


def _gray16() -> Image.Image:
    return Image.fromarray((np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 21).astype(np.uint16))


def _palette(transparent: bool) -> Callable[[], bytes]:
    def make() -> bytes:
        image = noise_rgb(64, 48).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        return encode(image, "PNG", transparency=0) if transparent else encode(image, "PNG")

    return make


MODE_CASES: dict[str, tuple[Callable[[], bytes], str, str, str]] = {
    # id: (make bytes, probed format, probed mode, PNG thumbnail mode)
    "16bit-gray-png": (lambda: encode(_gray16(), "PNG"), "PNG", "I;16", "L"),
    "16bit-gray-tiff": (lambda: encode(_gray16(), "TIFF"), "TIFF", "I;16", "L"),
    "16bit-bigendian-tiff": (lambda: encode(Image.new("I;16B", (64, 48), 40000), "TIFF"), "TIFF", "I;16B", "L"),
    "float-tiff": (
        lambda: encode(Image.fromarray(np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)), "TIFF"),
        "TIFF",
        "F",
        "L",
    ),
    "cmyk-jpeg": (lambda: encode(Image.new("CMYK", (64, 48), (10, 200, 30, 40)), "JPEG"), "JPEG", "CMYK", "RGB"),
    "gray-jpeg": (lambda: encode(noise_rgb(64, 48).convert("L"), "JPEG"), "JPEG", "L", "L"),
    "rgba-png": (lambda: encode(noise_rgb(64, 48).convert("RGBA"), "PNG"), "PNG", "RGBA", "RGBA"),
    "la-png": (lambda: encode(noise_rgb(64, 48).convert("LA"), "PNG"), "PNG", "LA", "LA"),
    "palette-png": (_palette(False), "PNG", "P", "RGB"),
    "palette-png-transparent": (_palette(True), "PNG", "P", "RGBA"),
    "bilevel-png": (lambda: encode(noise_rgb(64, 48).convert("1"), "PNG"), "PNG", "1", "L"),
    "rgb-tiff-deflate": (lambda: encode(noise_rgb(64, 48), "TIFF", compression="tiff_deflate"), "TIFF", "RGB", "RGB"),
    "rgb-tiff-lzw": (lambda: encode(noise_rgb(64, 48), "TIFF", compression="tiff_lzw"), "TIFF", "RGB", "RGB"),
}


@pytest.mark.parametrize("case", list(MODE_CASES))
def test_modes_probe_thumbnail_and_properties(case: str) -> None:
    make, fmt, mode, png_mode = MODE_CASES[case]
    data = make()
    info = probe_image(data, f"x.{fmt.lower()}")
    assert (info.width, info.height, info.format, info.mode) == (64, 48, fmt, mode)
    assert info.extension == {"JPEG": "jpg", "PNG": "png", "TIFF": "tiff"}[fmt]

    blob, width, height = make_thumbnail(data, (32, 32))
    out = decode(blob)
    assert (out.format, out.mode, out.size, (width, height)) == ("JPEG", "RGB", (32, 24), (32, 24))

    blob, width, height = make_thumbnail(data, None, "PNG")
    out = decode(blob)
    assert (out.format, out.mode, out.size) == ("PNG", png_mode, (64, 48))

    for normalize in (False, True):
        _blob, width, height, out_fmt = preset_thumbnail(data, "tiny", normalize_colors=normalize)
        assert (width, height, out_fmt) == (64, 48, "JPEG")  # smaller than the preset: not upscaled

    props = image_properties(data, PROPERTY_NAMES)
    assert set(props) == set(PROPERTY_NAMES)
    assert all(type(v) is float and np.isfinite(v) for v in props.values())
    assert 0.0 <= props["mean_brightness"] <= 255.0


def test_sixteen_bit_is_scaled_to_eight_bit() -> None:
    values = np.array([[0, 257 * 100], [257 * 200, 65535]], dtype=np.uint16)
    for fmt in ("PNG", "TIFF"):
        data = encode(Image.fromarray(values), fmt)
        blob, _w, _h = make_thumbnail(data, None, "PNG")
        assert np.asarray(decode(blob)).tolist() == [[0, 100], [200, 255]]
        white = encode(Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)), fmt)
        assert image_properties(white, ["mean_brightness"]) == {"mean_brightness": 255.0}


def test_float_tiff_in_unit_range_is_scaled() -> None:
    data = encode(Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)), "TIFF")
    assert image_properties(data, ["mean_brightness"]) == {"mean_brightness": 127.5}


def test_rgba_on_jpeg_is_composited_onto_white_and_png_keeps_alpha() -> None:
    data = encode(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), "PNG")
    jpeg, _w, _h = make_thumbnail(data, (5, 5), "JPEG")
    assert np.asarray(decode(jpeg)).min() >= 250  # transparent -> white, not black
    png, _w, _h = make_thumbnail(data, (5, 5), "PNG")
    assert decode(png).mode == "RGBA"
    assert np.asarray(decode(png))[..., 3].max() == 0


# --------------------------------------------------------------------------------------------------------------------
# thumbnails: sizes


@pytest.mark.parametrize(
    ("size", "preset", "expected"),
    [
        ((640, 480), "small", (300, 225)),
        ((640, 480), "tiny", (100, 75)),
        ((480, 640), "small", (225, 300)),
        ((480, 640), "tiny", (75, 100)),
        ((1000, 10), "small", (300, 3)),
        ((333, 777), "small", (129, 300)),
        ((50, 40), "small", (50, 40)),
        ((300, 300), "small", (300, 300)),
        ((100, 30), "tiny", (100, 30)),
    ],
)
@pytest.mark.parametrize("source_format", ["JPEG", "PNG"])
def test_presets_fit_keep_aspect_and_never_upscale(
    size: tuple[int, int], preset: str, expected: tuple[int, int], source_format: str
) -> None:
    data = encode(noise_rgb(*size), source_format)
    blob, width, height, fmt = preset_thumbnail(data, preset)
    assert (width, height, fmt) == (*expected, "JPEG")
    assert decode(blob).size == expected
    limit = THUMBNAIL_PRESETS[preset]
    assert limit is not None
    assert width <= limit[0] and height <= limit[1]
    assert width <= size[0] and height <= size[1]
    # the limiting side is exact; the other is rounded to the nearest pixel
    assert abs(width * size[1] - height * size[0]) <= max(size) / 2


def test_fit_within_extremes() -> None:
    assert fit_within((10_000, 1), (100, 100)) == (100, 1)
    assert fit_within((1, 10_000), (100, 100)) == (1, 100)
    assert fit_within((7, 7), (100, 50)) == (7, 7)
    assert fit_within((200, 100), (100, 100)) == (100, 50)


@pytest.mark.parametrize("source_format", ["JPEG", "PNG", "TIFF"])
def test_full_size_png_is_png_at_original_size(source_format: str) -> None:
    image = noise_rgb(123, 45)
    blob, width, height, fmt = preset_thumbnail(encode(image, source_format), "full_size_png")
    out = decode(blob)
    assert (fmt, out.format, out.size, (width, height)) == ("PNG", "PNG", (123, 45), (123, 45))
    if source_format != "JPEG":  # lossless in, lossless out
        assert np.array_equal(np.asarray(out), np.asarray(image))


def test_large_jpeg_uses_draft(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int] | None] = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(
        self: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None
    ) -> tuple[str, tuple[int, int, float, float]] | None:
        calls.append(size)
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    data = encode(noise_rgb(1600, 1200), "JPEG")
    _blob, width, height, _fmt = preset_thumbnail(data, "tiny")
    assert (width, height) == (100, 75)
    assert calls == [(200, 150)]
    calls.clear()
    preset_thumbnail(data, "full_size_png")
    assert calls == []  # nothing to reduce


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((120, 200), (160, 120)), ((120, 200, 3), (160, 120)), ((200, 120), (120, 90)), ((1000, 2000, 1), (640, 480))],
)
def test_custom_thumbnail_desired_shape_is_height_width(shape: tuple[int, ...], expected: tuple[int, int]) -> None:
    data = encode(noise_rgb(640, 480), "JPEG")
    blob, width, height, fmt = custom_thumbnail(data, shape)
    assert (width, height, fmt) == (*expected, "JPEG")
    assert decode(blob).size == expected
    _blob, width, height, fmt = custom_thumbnail(data, list(shape), fmt="png")
    assert (width, height, fmt) == (*expected, "PNG")


@pytest.mark.parametrize("shape", [(100,), (), "ab", (0, 10), (10, -1), (10.5, 10), (True, 5)])
def test_custom_thumbnail_rejects_bad_shapes(shape: object) -> None:
    with pytest.raises(ValueError, match="desired_shape"):
        custom_thumbnail(encode(noise_rgb(8, 8), "PNG"), shape)  # type: ignore[arg-type]


def test_bad_thumbnail_arguments() -> None:
    data = encode(noise_rgb(8, 8), "PNG")
    with pytest.raises(ValueError, match="unsupported thumbnail format 'GIF'"):
        make_thumbnail(data, (4, 4), "GIF")
    with pytest.raises(ValueError, match="max width"):
        make_thumbnail(data, (0, 4))
    with pytest.raises(ValueError, match=r"unknown thumbnail preset 'huge' \(valid: tiny, small, full_size_png\)"):
        preset_thumbnail(data, "huge")


# --------------------------------------------------------------------------------------------------------------------
# thumbnails: normalize_colors


def test_normalize_colors_stretches_each_channel() -> None:
    x = np.linspace(0.0, 1.0, 200)[None, :].repeat(100, axis=0)
    rgb = np.stack([100 + 20 * x, 50 + 10 * x, 200 + 1 * x], axis=-1).round().astype(np.uint8)
    data = encode(Image.fromarray(rgb), "PNG")

    plain, _w, _h = make_thumbnail(data, (100, 100), "PNG")
    plain_array = np.asarray(decode(plain))
    assert plain_array[..., 0].min() >= 100 and plain_array[..., 0].max() <= 120

    for max_size in ((100, 100), None):
        blob, _w, _h = make_thumbnail(data, max_size, "PNG", normalize_colors=True)
        array = np.asarray(decode(blob))
        for channel in range(3):
            assert (array[..., channel].min(), array[..., channel].max()) == (0, 255)

    blob, _w, _h, fmt = preset_thumbnail(data, "small", normalize_colors=True)
    array = np.asarray(decode(blob)).astype(int)
    assert fmt == "JPEG"
    assert array.min() <= 5 and array.max() >= 250  # JPEG is lossy: roughly the full range


def test_normalize_colors_leaves_alpha_and_constant_channels_alone() -> None:
    rgba = np.zeros((10, 20, 4), dtype=np.uint8)
    rgba[..., 0] = np.arange(20, dtype=np.uint8)[None, :] + 10  # 10..29
    rgba[..., 1] = 77  # constant
    rgba[..., 2] = 5
    rgba[..., 3] = 128
    blob, _w, _h = make_thumbnail(encode(Image.fromarray(rgba), "PNG"), None, "PNG", normalize_colors=True)
    out = np.asarray(decode(blob))
    assert (out[..., 0].min(), out[..., 0].max()) == (0, 255)
    assert np.all(out[..., 1] == 77) and np.all(out[..., 2] == 5) and np.all(out[..., 3] == 128)


def test_normalize_colors_keeps_precision_of_twelve_bit_data() -> None:
    twelve_bit = np.linspace(0, 4095, 64 * 64).reshape(64, 64).astype(np.uint16)
    data = encode(Image.fromarray(twelve_bit), "PNG")
    plain, _w, _h = make_thumbnail(data, None, "PNG")
    assert np.asarray(decode(plain)).max() == round(4095 / 257)
    blob, _w, _h = make_thumbnail(data, None, "PNG", normalize_colors=True)
    out = np.asarray(decode(blob))
    assert (out.min(), out.max()) == (0, 255)
    assert len(np.unique(out)) == 256  # stretched before the reduction to 8 bits, so no posterization


# --------------------------------------------------------------------------------------------------------------------
# image properties


def reference_properties(y: np.ndarray) -> dict[str, float]:
    """Straightforward loops, independent of the vectorized implementation."""
    height, width = y.shape
    values = [float(v) for v in y.ravel()]
    mean = sum(values) / len(values)
    scaled = [v / 255 for v in values]
    scaled_mean = sum(scaled) / len(scaled)
    contrast = (sum((v - scaled_mean) ** 2 for v in scaled) / len(scaled)) ** 0.5
    laplacian = []
    for row in range(1, height - 1):
        for col in range(1, width - 1):
            laplacian.append(
                float(y[row - 1, col] + y[row + 1, col] + y[row, col - 1] + y[row, col + 1] - 4 * y[row, col])
            )
    lap_mean = sum(laplacian) / len(laplacian)
    lap_var = sum((v - lap_mean) ** 2 for v in laplacian) / len(laplacian)
    return {"mean_brightness": mean, "rms_contrast": contrast, "variance_of_laplacian": lap_var}


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_constant_image(fmt: str) -> None:
    data = encode(Image.new("L", (16, 9), 37), fmt)
    assert image_properties(data, PROPERTY_NAMES) == {
        "mean_brightness": 37.0,
        "rms_contrast": 0.0,
        "variance_of_laplacian": 0.0,
    }


def test_pure_white_rgb() -> None:
    props = image_properties(encode(Image.new("RGB", (8, 8), (255, 255, 255)), "PNG"), PROPERTY_NAMES)
    assert props["mean_brightness"] == pytest.approx(255 * (0.2989 + 0.5870 + 0.1140), abs=1e-9)
    assert props["rms_contrast"] == pytest.approx(0.0, abs=1e-12)
    assert props["variance_of_laplacian"] == pytest.approx(0.0, abs=1e-9)


def test_constant_colour_uses_the_luma_weights() -> None:
    props = image_properties(encode(Image.new("RGB", (5, 5), (10, 20, 30)), "PNG"), ["mean_brightness"])
    assert props["mean_brightness"] == pytest.approx(0.2989 * 10 + 0.5870 * 20 + 0.1140 * 30, abs=1e-9)


def test_checkerboard() -> None:
    board = (np.indices((8, 8)).sum(axis=0) % 2 * 255).astype(np.uint8)
    props = image_properties(encode(Image.fromarray(board), "PNG"), PROPERTY_NAMES)
    expected = reference_properties(board.astype(np.float64))
    assert props == pytest.approx(expected, rel=1e-12)
    # by hand: every interior Laplacian is +-1020 in alternating signs over 6x6 = 36 cells (18 each)
    assert props["variance_of_laplacian"] == pytest.approx(1020.0**2)
    assert props["mean_brightness"] == 127.5
    assert props["rms_contrast"] == 0.5


def test_random_rgb_image_matches_loops() -> None:
    rgb = np.random.default_rng(7).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    props = image_properties(encode(Image.fromarray(rgb), "PNG"), PROPERTY_NAMES)
    y = np.zeros((7, 9))
    for row in range(7):
        for col in range(9):
            r, g, b = (float(v) for v in rgb[row, col])
            y[row, col] = 0.2989 * r + 0.5870 * g + 0.1140 * b
    assert props == pytest.approx(reference_properties(y), rel=1e-9)


def test_properties_ignore_alpha() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, np.full((6, 6), 9, dtype=np.uint8)])
    assert image_properties(encode(Image.fromarray(rgba), "PNG"), PROPERTY_NAMES) == image_properties(
        encode(Image.fromarray(rgb), "PNG"), PROPERTY_NAMES
    )


def test_tiny_image_has_zero_laplacian_variance() -> None:
    data = encode(noise_rgb(2, 2), "PNG")
    assert image_properties(data, ["variance_of_laplacian"]) == {"variance_of_laplacian": 0.0}


def test_property_names() -> None:
    data = encode(noise_rgb(4, 4), "PNG")
    with pytest.raises(ValueError, match="unknown image property 'sharpness'") as excinfo:
        image_properties(data, ["mean_brightness", "sharpness"])
    assert "mean_brightness, rms_contrast, variance_of_laplacian" in str(excinfo.value)
    with pytest.raises(ValueError, match="unknown image property"):
        image_properties(b"", ["nope"])  # names are checked before the data
    assert image_properties(data, []) == {}
    assert set(image_properties(data, "rms_contrast")) == {"rms_contrast"}
    assert list(image_properties(data, ["rms_contrast", "mean_brightness", "rms_contrast"])) == [
        "rms_contrast",
        "mean_brightness",
    ]


def test_compute_properties_on_a_pil_image() -> None:
    image = Image.new("L", (4, 4), 200)
    assert mi.compute_properties(image, ["mean_brightness"]) == {"mean_brightness": 200.0}


def float64_properties(y: np.ndarray) -> dict[str, float]:
    """The FACTS 12 formulas written plainly in float64 numpy (the reference for larger images)."""
    lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4 * y[1:-1, 1:-1]
    return {"mean_brightness": y.mean(), "rms_contrast": (y / 255).std(),
            "variance_of_laplacian": lap.var() if lap.size else 0.0}  # fmt: skip


def float64_luma(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float64)
    return WEIGHTS[0] * rgb[..., 0] + WEIGHTS[1] * rgb[..., 1] + WEIGHTS[2] * rgb[..., 2]


@pytest.mark.parametrize("band_pixels", [1, 97, 4096, 65536], ids=lambda n: f"band{n}")
@pytest.mark.parametrize("shape", [(720, 1280), (131, 257), (3, 3), (3, 400), (400, 3), (4, 70000)])
def test_band_kernel_matches_float64_formulas_at_full_resolution(
    monkeypatch: pytest.MonkeyPatch, band_pixels: int, shape: tuple[int, int]
) -> None:
    """Bands of one row, odd splits and rows wider than a band all give the full-resolution values."""
    monkeypatch.setattr(luma, "BAND_PIXELS", band_pixels)
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    expected = float64_properties(float64_luma(rgb))
    assert mi.compute_properties(Image.fromarray(rgb), PROPERTY_NAMES) == pytest.approx(expected, rel=1e-12)
    gray = rgb[..., 1]
    expected = float64_properties(gray.astype(np.float64))
    assert mi.compute_properties(Image.fromarray(gray), PROPERTY_NAMES) == pytest.approx(expected, rel=1e-12)


def test_extreme_images_stay_exact() -> None:
    """Largest luma steps (white next to black everywhere) and a bright image whose sampled shift is far from
    most pixels: the float32 intermediates must not round."""
    board = (np.indices((301, 333)).sum(axis=0) % 2 * 255).astype(np.uint8)
    rgb = np.dstack([board, board, board])
    y = float64_luma(rgb)
    assert mi.compute_properties(Image.fromarray(rgb), PROPERTY_NAMES) == pytest.approx(float64_properties(y), 1e-12)
    spot = np.zeros((500, 600, 3), dtype=np.uint8)
    spot[::32, ::32] = 255  # exactly the pixels the shift is sampled from are white
    spot[7, 9] = (255, 0, 40)
    y = float64_luma(spot)
    assert mi.compute_properties(Image.fromarray(spot), PROPERTY_NAMES) == pytest.approx(float64_properties(y), 1e-12)
    # bright and nearly flat: a variance that is tiny next to E[Y^2]
    flat = (250 + np.random.default_rng(2).integers(0, 2, (720, 1280, 3))).astype(np.uint8)
    expected = float64_properties(float64_luma(flat))
    assert mi.compute_properties(Image.fromarray(flat), PROPERTY_NAMES) == pytest.approx(expected, rel=1e-12)


def test_jpeg_frame_properties_match_float64_formulas(jpeg_640x480: bytes) -> None:
    with Image.open(io.BytesIO(jpeg_640x480)) as decoded:
        y = float64_luma(np.asarray(decoded.convert("RGB")))
    assert image_properties(jpeg_640x480, PROPERTY_NAMES) == pytest.approx(float64_properties(y), rel=1e-12)


@pytest.mark.parametrize("mode", ["LA", "RGBX", "P", "CMYK", "YCbCr", "1"])
def test_other_eight_bit_modes_use_their_rgb_or_gray_luma(mode: str) -> None:
    rgb = np.random.default_rng(11).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    image = Image.fromarray(rgb).convert(mode)
    if mode in ("LA", "1"):
        y = np.asarray(image.convert("L"), dtype=np.float64)
    else:
        y = float64_luma(np.asarray(image.convert("RGB")))
    assert mi.compute_properties(image, PROPERTY_NAMES) == pytest.approx(float64_properties(y), rel=1e-12)


def test_properties_are_the_same_computed_in_threads() -> None:
    datas = [encode(noise_rgb(300 + 13 * i, 200 + 7 * i), "JPEG") for i in range(8)]
    alone = [image_properties(d, PROPERTY_NAMES) for d in datas]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda d: image_properties(d, PROPERTY_NAMES), datas * 3)) == alone * 3


def test_luma_stats_checks_its_input() -> None:
    with pytest.raises(ValueError, match="expected uint8 pixels"):
        luma.eight_bit_luma_stats(np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="expected uint8 pixels"):
        luma.eight_bit_luma_stats(np.zeros((4, 4, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="no statistics"):
        luma.eight_bit_luma_stats(np.zeros((0, 4), dtype=np.uint8))
    stats = luma.eight_bit_luma_stats(np.full((5, 5, 3), 10, dtype=np.uint8), laplacian=False)
    assert stats.laplacian_variance == 0.0 and stats.std == 0.0


# --------------------------------------------------------------------------------------------------------------------
# decompression bombs


def test_header_above_200_megapixels_is_rejected() -> None:
    with pytest.raises(ImageDecodeError, match=r"image too large: 20000x10001 .* 200 megapixels") as excinfo:
        probe_image(png_header_only(20_000, 10_001), "bomb.png")
    assert excinfo.value.image_format == "PNG"
    with pytest.raises(ImageDecodeError, match="image too large: 65000x65000"):
        probe_image(jpeg_with_size(65_000, 65_000))
    with pytest.raises(ImageDecodeError, match="image too large"):
        make_thumbnail(jpeg_with_size(65_000, 65_000), (100, 100))
    with pytest.raises(ImageDecodeError, match="image too large"):
        image_properties(png_header_only(20_000, 10_001), ["mean_brightness"])


def test_header_between_pillow_limit_and_ours_is_accepted_without_warning() -> None:
    # 100 MP is above Pillow's default MAX_IMAGE_PIXELS (~89.5 MP, which would warn) but below 200 MP;
    # filterwarnings=error turns any DecompressionBombWarning into a failure here.
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < 100_000_000
    info = probe_image(png_header_only(10_000, 10_000))
    assert (info.width, info.height) == (10_000, 10_000)
    assert probe_image(jpeg_with_size(10_000, 10_000), verify=False).width == 10_000


def test_decoding_ignores_pillows_global_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for fmt in ("JPEG", "PNG", "TIFF"):
        data = encode(noise_rgb(64, 48), fmt)  # 3072 pixels > 1000
        assert probe_image(data).width == 64
        assert make_thumbnail(data, (32, 32))[1:] == (32, 24)
        assert image_properties(data, ["mean_brightness"])["mean_brightness"] > 0
        assert Image.MAX_IMAGE_PIXELS == 1000  # restored after the TIFF decode


def test_our_limit_applies_to_small_images_when_lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mi, "MAX_PIXELS", 1000)
    with pytest.raises(ImageDecodeError, match="image too large: 64x48"):
        probe_image(encode(noise_rgb(64, 48), "TIFF"))


# --------------------------------------------------------------------------------------------------------------------
# small things


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("JPEG", "image/jpeg"),
        ("jpg", "image/jpeg"),
        ("PNG", "image/png"),
        ("png", "image/png"),
        ("TIFF", "image/tiff"),
        (".tif", "image/tiff"),
    ],
)
def test_content_type_for(fmt: str, expected: str) -> None:
    assert content_type_for(fmt) == expected


def test_content_type_for_unknown() -> None:
    with pytest.raises(ValueError, match=r"unsupported image format 'GIF' \(supported: JPEG, PNG, TIFF\)"):
        content_type_for("GIF")


def test_image_info_is_frozen(jpeg_640x480: bytes) -> None:
    info = probe_image(jpeg_640x480)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.width = 1  # type: ignore[misc]
    assert info == mi.ImageInfo(width=640, height=480, format="JPEG", mode="RGB", extension="jpg")
    assert info.content_type == "image/jpeg"


def test_presets_and_extensions_are_the_seeds() -> None:
    assert THUMBNAIL_PRESETS == {"tiny": (100, 100), "small": (300, 300), "full_size_png": None}
    assert set(mi.EXTENSION_FORMATS) == {"jpeg", "jpg", "png", "tif", "tiff"}
