"""Still images: a fast header probe, thumbnails and image properties. JPEG, PNG and TIFF only.

A plain library on top of Pillow and numpy: bytes in, values out. It knows nothing of the catalog, HTTP or settings.

Decoding never goes through ``PIL.Image.open``. The container is recognized here from its magic bytes and the
matching Pillow plugin is used directly, so that

* only JPEG, PNG and TIFF are ever parsed (anything else is an :class:`ImageDecodeError` naming the format);
* the decompression-bomb limit is this module's :data:`MAX_PIXELS` (200 megapixels), checked on the header before
  any pixel is decoded, instead of Pillow's process-wide ``Image.MAX_IMAGE_PIXELS`` (about 89 megapixels, which
  warns above the limit and fails at twice it). No ``DecompressionBombWarning`` is ever emitted for an accepted
  image, and no global Pillow setting is changed, except for the brief window described in
  :class:`_BombLimit` (TIFF only).

Memory is bounded as well as pixels: every decode estimates, from the header, the bytes it will hold at its peak
(decoded samples, converted copies, the thumbnail) and reserves them from the process's decode budget
(:mod:`scenebase.media.budget`) first; an image that could never fit is refused at probe time, so it is not
ingested. JPEGs are decoded at 1/2, 1/4 or 1/8 scale when a thumbnail is that much smaller; PNG and TIFF cannot be.

Pixels are used as stored: EXIF orientation is not applied (for JPEG and PNG), so thumbnails, properties and the
probed width/height all agree with each other and with annotation coordinates.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from scenebase.media.budget import DECODE_BUDGET, DecodeBudget, DecodeTooLarge
from scenebase.media.errors import MediaDecodeError
from scenebase.media.luma import LumaStats, eight_bit_luma_stats, float_luma_stats

__all__ = [
    "EXTENSION_FORMATS",
    "JPEG_TRAILER_TOLERANCE",
    "MAX_PIXELS",
    "PRESET_FORMATS",
    "PROPERTY_NAMES",
    "SUPPORTED_FORMATS",
    "THUMBNAIL_PRESETS",
    "ImageDecodeError",
    "ImageInfo",
    "compute_properties",
    "content_type_for",
    "custom_thumbnail",
    "decode_estimate",
    "fit_within",
    "image_properties",
    "make_thumbnail",
    "preset_thumbnail",
    "probe_image",
]

SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "TIFF")
"""Pillow format names this module accepts."""

EXTENSION_FORMATS: dict[str, str] = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "tif": "TIFF", "tiff": "TIFF"}
"""File extensions (lower case, no dot) of the supported formats, as the seed accepts them."""

MAX_PIXELS: int = 200_000_000
"""Images with more pixels than this (width * height, from the header) are rejected as decompression bombs."""

JPEG_TRAILER_TOLERANCE: int = 64
"""Bytes of padding allowed after a JPEG's end-of-image marker or a PNG's IEND chunk."""

JPEG_QUALITY: int = 85

THUMBNAIL_PRESETS: dict[str, tuple[int, int] | None] = {"tiny": (100, 100), "small": (300, 300), "full_size_png": None}
"""Preset name -> (max width, max height) the thumbnail must fit in; None = original size."""

PRESET_FORMATS: dict[str, str] = {"tiny": "JPEG", "small": "JPEG", "full_size_png": "PNG"}
"""Preset name -> output format."""

PROPERTY_NAMES: tuple[str, ...] = ("mean_brightness", "rms_contrast", "variance_of_laplacian")

_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "TIFF": "tiff"}
_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "TIFF": "image/tiff"}
_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF"}
_SUPPORTED_TEXT = ", ".join(SUPPORTED_FORMATS)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xae\x42\x60\x82"  # length 0, type, CRC
_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"
_TIFF_PREFIXES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders

# modes with more than 8 bits per sample; they are handled as float32 arrays
_HIGH_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})

# bytes Pillow stores per pixel: 1 for these, 2 for 16-bit, 4 for every other mode (RGB is stored as 4 bytes too)
_ONE_BYTE_MODES = frozenset({"1", "L", "P"})
_TWO_BYTE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
# modes used as they are for thumbnails (no converted copy of the full image)
_WORKING_MODES = frozenset({"L", "RGB", "LA", "RGBA", "F"})
# peak bytes per pixel of the thumbnail itself: 8-bit finishing with floats, alpha compositing, the encoded output
_FINISH_BYTES_PER_PIXEL = 16
_OUTPUT_BYTES_PER_PIXEL = 10
# estimates are measured peaks (tests/media/test_decode_budget.py) plus this share for the allocator and Pillow
_ESTIMATE_MARGIN = 1.25
# image_properties: the float64 luma plus the Laplacian's temporaries
_PROPERTY_BYTES_PER_PIXEL = 40

_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")

FloatArray = npt.NDArray[np.float64]


class ImageDecodeError(MediaDecodeError):
    """The bytes are not a usable JPEG, PNG or TIFF image.

    ``problem`` says what is wrong ("not an image ...", "truncated JPEG ...", "unsupported image format 'GIF' ...",
    "image too large ..."); ``name`` is the file name given by the caller, if any; ``image_format`` is the
    detected format when there is one (also for unsupported formats, e.g. 'GIF').
    """

    def __init__(self, problem: str, *, name: str | None = None, image_format: str | None = None) -> None:
        super().__init__(problem, name=name)
        self.image_format = image_format


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What :func:`probe_image` reads from an image header."""

    width: int
    height: int
    format: str
    """Pillow format name: 'JPEG', 'PNG' or 'TIFF'."""
    mode: str
    """Pillow mode, e.g. 'RGB', 'L', 'RGBA', 'P', 'CMYK', 'I;16'."""
    extension: str
    """Canonical file extension without the dot: 'jpg', 'png' or 'tiff'."""

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self.format]


# --------------------------------------------------------------------------------------------------------------------
# formats


def content_type_for(image_format: str) -> str:
    """MIME type of a supported format: 'JPEG' -> 'image/jpeg', 'PNG' -> 'image/png', 'TIFF' -> 'image/tiff'.

    Case-insensitive; the aliases 'JPG' and 'TIF' (and a leading dot, as in '.jpg') are accepted too.
    """
    key = image_format.strip().lstrip(".").upper()
    key = _FORMAT_ALIASES.get(key, key)
    if key not in _CONTENT_TYPES:
        raise ValueError(f"unsupported image format {image_format!r} (supported: {_SUPPORTED_TEXT})")
    return _CONTENT_TYPES[key]


def _sniff(data: bytes) -> str | None:
    if data.startswith(_JPEG_SOI):
        return "JPEG"
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data[:4] in _TIFF_PREFIXES:
        return "TIFF"
    return None


def _identify_unsupported(data: bytes) -> str | None:
    """Name the format of bytes that are not JPEG/PNG/TIFF, by the plugins' magic-byte tests only (no decoding)."""
    prefix = data[:16]  # what Image.open hands to the plugins' accept functions
    Image.init()
    for fmt in Image.ID:
        _factory, accept = Image.OPEN[fmt]
        if accept is None or fmt in SUPPORTED_FORMATS:
            continue
        try:
            accepted = accept(prefix)
        except Exception:  # a plugin's sniffing function must not turn a clear error into a crash
            continue
        if accepted:
            return fmt
    if prefix[4:8] == b"ftyp" and prefix[8:12] in _HEIF_BRANDS:
        return "HEIF"
    if prefix.startswith(b"%PDF-"):
        return "PDF"
    return None


def _not_an_image(data: bytes, name: str | None) -> str:
    hint = ""
    if name and "." in name:
        ext = name.rsplit(".", 1)[1].lower()
        if ext in EXTENSION_FORMATS:
            hint = f"; the extension '.{ext}' suggests {EXTENSION_FORMATS[ext]} but the content is not"
    return f"not an image (unrecognized content, starts with {data[:8]!r}{hint}; supported: {_SUPPORTED_TEXT})"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------------------------------------------------
# opening and loading


def _open(data: bytes, name: str | None) -> ImageFile.ImageFile:
    """Recognize the format, parse the header with the matching Pillow plugin and enforce :data:`MAX_PIXELS`."""
    if not data:
        raise ImageDecodeError("empty data (0 bytes), not an image", name=name)
    fmt = _sniff(data)
    if fmt is None:
        other = _identify_unsupported(data)
        if other is not None:
            raise ImageDecodeError(
                f"unsupported image format {other!r} (supported: {_SUPPORTED_TEXT})", name=name, image_format=other
            )
        raise ImageDecodeError(_not_an_image(data, name), name=name)

    fp = io.BytesIO(data)
    try:
        im: ImageFile.ImageFile
        if fmt == "JPEG":
            # the plain JPEG plugin, not jpeg_factory: multi-picture (MPO) camera files are JPEGs too
            im = JpegImagePlugin.JpegImageFile(fp)
        elif fmt == "PNG":
            im = PngImagePlugin.PngImageFile(fp)
        else:
            im = TiffImagePlugin.TiffImageFile(fp)
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises SyntaxError, OSError, ValueError, struct.error, ... on bad headers
        raise ImageDecodeError(f"corrupt {fmt} header ({_describe(exc)})", name=name, image_format=fmt) from exc

    width, height = im.size
    if width * height > MAX_PIXELS:
        raise ImageDecodeError(
            f"image too large: {width}x{height} = {width * height / 1e6:.1f} megapixels exceeds the limit of "
            f"{MAX_PIXELS / 1e6:g} megapixels (possible decompression bomb)",
            name=name,
            image_format=fmt,
        )
    return im


class _BombLimit:
    """Reference-counted, temporary raise of ``PIL.Image.MAX_IMAGE_PIXELS`` to :data:`MAX_PIXELS`.

    Only Pillow's TIFF plugin re-checks the pixel count while decoding (``TiffImageFile.load_prepare``); it would
    warn above Pillow's default limit (~89 MP) and fail at twice it, although this module accepts up to
    :data:`MAX_PIXELS`. The size was already checked against :data:`MAX_PIXELS`, so raising Pillow's limit to that
    value for the duration of the decode is safe; the previous value is restored when the last concurrent user
    leaves. It is only entered for TIFFs larger than Pillow's current limit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: int | None = None
        self._changed = False

    @contextlib.contextmanager
    def raised(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = Image.MAX_IMAGE_PIXELS
                self._changed = self._saved is not None and self._saved < MAX_PIXELS
                if self._changed:
                    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._changed:
                    Image.MAX_IMAGE_PIXELS = self._saved
                    self._changed = False


_bomb_limit = _BombLimit()


def _load(im: ImageFile.ImageFile, name: str | None) -> None:
    """Decode the pixels; any decoder failure becomes an :class:`ImageDecodeError`."""
    fmt = im.format or "image"
    pil_limit = Image.MAX_IMAGE_PIXELS
    needs_raise = fmt == "TIFF" and pil_limit is not None and im.size[0] * im.size[1] > pil_limit
    try:
        with _bomb_limit.raised() if needs_raise else contextlib.nullcontext():
            im.load()
    except MemoryError:
        raise
    except Exception as exc:
        raise ImageDecodeError(
            f"corrupt or truncated {fmt} data ({_describe(exc)})", name=name, image_format=fmt
        ) from exc


def _ints(value: object) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,)
    if isinstance(value, tuple | list):
        return tuple(int(v) for v in value)
    return ()


def _verify(im: ImageFile.ImageFile, data: bytes, name: str | None, budget: DecodeBudget) -> None:
    fmt = im.format
    size = len(data)
    if fmt == "JPEG":
        # Entropy-coded data never contains FF D9 (FF is always stuffed), so an EOI after the start of the scan and
        # near the end of the file means the file was not cut short.
        scan_start = im.tile[0].offset if im.tile else 0
        eoi = data.rfind(_JPEG_EOI, max(scan_start, size - JPEG_TRAILER_TOLERANCE - len(_JPEG_EOI)))
        if eoi < 0:
            raise ImageDecodeError(
                f"truncated JPEG (no end-of-image marker FF D9 within the last {JPEG_TRAILER_TOLERANCE} bytes of "
                f"{size} bytes)",
                name=name,
                image_format=fmt,
            )
    elif fmt == "PNG":
        if data.rfind(_PNG_IEND, max(0, size - JPEG_TRAILER_TOLERANCE - len(_PNG_IEND))) < 0:
            raise ImageDecodeError(
                f"truncated PNG (no IEND chunk within the last {JPEG_TRAILER_TOLERANCE} bytes of {size} bytes)",
                name=name,
                image_format=fmt,
            )
    elif fmt == "TIFF":
        assert isinstance(im, TiffImagePlugin.TiffImageFile)
        tags = im.tag_v2
        offsets = _ints(tags.get(TiffImagePlugin.STRIPOFFSETS)) or _ints(tags.get(TiffImagePlugin.TILEOFFSETS))
        counts = _ints(tags.get(TiffImagePlugin.STRIPBYTECOUNTS)) or _ints(tags.get(TiffImagePlugin.TILEBYTECOUNTS))
        if not offsets:
            raise ImageDecodeError("corrupt TIFF (no strip or tile offsets)", name=name, image_format=fmt)
        if len(counts) == len(offsets):
            end = max(offset + count for offset, count in zip(offsets, counts, strict=True))
            if end > size:
                raise ImageDecodeError(
                    f"truncated TIFF (image data extends to byte {end} but the file has {size} bytes)",
                    name=name,
                    image_format=fmt,
                )
        else:  # byte counts missing or inconsistent: decode to be sure
            with budget.reserve(im.size[0] * im.size[1] * _bytes_per_pixel(im.mode), _describe_image(im, name)):
                _load(im, name)


# --------------------------------------------------------------------------------------------------------------------
# probe


def probe_image(
    data: bytes, name: str | None = None, *, verify: bool = True, budget: DecodeBudget = DECODE_BUDGET
) -> ImageInfo:
    """Read size, format and mode from the header of a JPEG, PNG or TIFF, without decoding the pixels.

    ``name`` (a file name) is only used in error messages.

    Always checked: the content is JPEG, PNG or TIFF (by magic bytes, whatever the name says; anything else raises
    :class:`ImageDecodeError` naming the format it is, e.g. 'GIF', or "not an image"), Pillow can parse the header,
    and width * height <= :data:`MAX_PIXELS`, and its cheapest decode (a JPEG at 1/8 scale, any other image at full
    size) fits in ``budget``: an image no thumbnail could ever be made of is refused here, at ingest.

    With ``verify=True`` (the default) the file is also checked for truncation, still without decoding:

    * JPEG: an end-of-image marker (FF D9) after the start of the scan data and within the last
      :data:`JPEG_TRAILER_TOLERANCE` bytes (padding after it is tolerated);
    * PNG: the IEND chunk within the last :data:`JPEG_TRAILER_TOLERANCE` bytes;
    * TIFF: every strip (or tile) of the first page lies inside the file (offset + byte count <= file size); if the
      byte counts are missing the first page is decoded instead.

    Corruption inside the compressed data of a complete file is not detected here; it surfaces as an
    :class:`ImageDecodeError` when the image is decoded (thumbnails, properties).
    """
    im = _open(data, name)
    try:
        budget.check(_smallest_decode(im), _describe_image(im, name))
    except DecodeTooLarge as e:
        raise ImageDecodeError(f"image too large to decode: {e.problem}", name=name, image_format=im.format) from None
    if verify:
        _verify(im, data, name, budget)
    fmt = im.format or ""
    width, height = im.size
    return ImageInfo(width=width, height=height, format=fmt, mode=im.mode, extension=_EXTENSIONS[fmt])


# --------------------------------------------------------------------------------------------------------------------
# thumbnails


def fit_within(size: tuple[int, int], max_size: tuple[int, int]) -> tuple[int, int]:
    """The largest (width, height) with the aspect ratio of ``size`` that fits inside ``max_size``; never larger
    than ``size`` (no upscaling). The limiting side is exact, the other one rounded, and both are at least 1."""
    width, height = size
    max_width, max_height = max_size
    if width <= max_width and height <= max_height:
        return width, height
    scale = min(max_width / width, max_height / height)
    return max(1, min(max_width, round(width * scale))), max(1, min(max_height, round(height * scale)))


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _output_format(fmt: str) -> str:
    key = fmt.strip().upper()
    key = _FORMAT_ALIASES.get(key, key)
    if key not in ("JPEG", "PNG"):
        raise ValueError(f"unsupported thumbnail format {fmt!r} (supported: JPEG, PNG)")
    return key


def _working_image(im: Image.Image) -> Image.Image:
    """Convert to one of L, LA, RGB, RGBA (8 bits per sample) or F (float32, for 16/32-bit and float sources)."""
    mode = im.mode
    if mode == "F":
        return im
    if mode in _HIGH_DEPTH_MODES:
        return im.convert("F")  # exact for 16-bit and 32-bit integers below 2**24, like a float32 array
    if mode in ("L", "RGB"):
        return im.convert(mode[0] + "A" if mode == "L" else "RGBA") if "transparency" in im.info else im
    if mode in ("LA", "RGBA"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode in ("P", "PA"):
        return im.convert("RGBA" if mode == "PA" or im.has_transparency_data else "RGB")
    if mode == "La":
        return im.convert("LA")
    if mode == "RGBa":
        return im.convert("RGBA")
    return im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...


def _high_depth_to_255(values: FloatArray, source_mode: str) -> FloatArray:
    """Map samples of a high-bit-depth mode onto 0..255 (not clipped), in place.

    Integer modes (I;16*, and I, which Pillow uses for 16-bit data too) are taken as 16-bit: value / 257, so 65535
    becomes 255. Float images are taken as 0..1 if all finite values lie in that range, else as 0..255.
    """
    if source_mode == "F":
        np.nan_to_num(values, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
        if values.size and values.min() >= 0.0 and values.max() <= 1.0:
            values *= 255.0
        return values
    values /= 257.0
    return values


def _stretch(values: FloatArray) -> FloatArray:
    """Min-max stretch one channel to 0..255, in place; a constant channel is left as it is."""
    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 0.0
    if high <= low:
        return values
    values -= low
    values *= 255.0 / (high - low)
    return values


def _to_uint8(values: FloatArray) -> npt.NDArray[np.uint8]:
    """Round and clip to 0..255 (in place: ``values`` is used up)."""
    np.rint(values, out=values)
    np.clip(values, 0, 255, out=values)
    return values.astype(np.uint8)


def _finish_8bit(work: Image.Image, source_mode: str, normalize_colors: bool) -> Image.Image:
    """Bring the resized working image to 8 bits per sample, optionally stretching each colour channel. Works on
    one float64 channel at a time, in place: a full-size thumbnail holds one float copy of one channel at most."""
    if work.mode == "F":
        values = np.array(work, dtype=np.float64)
        if normalize_colors and values.size and values.max() > values.min():
            values = _stretch(values)
        else:
            values = _high_depth_to_255(values, source_mode)
        return Image.fromarray(_to_uint8(values))
    if not normalize_colors:
        return work
    if work.mode == "L":
        return Image.fromarray(_to_uint8(_stretch(np.array(work, dtype=np.float64))))
    bands = work.split()
    colours = len(bands) - (1 if work.mode in ("LA", "RGBA") else 0)  # alpha is left alone
    stretched = [Image.fromarray(_to_uint8(_stretch(np.array(b, dtype=np.float64)))) for b in bands[:colours]]
    return Image.merge(work.mode, [*stretched, *bands[colours:]])


def _for_output(work: Image.Image, fmt: str) -> Image.Image:
    if fmt == "PNG" or work.mode == "RGB":
        return work  # PNG keeps L, LA, RGB, RGBA as they are
    if work.mode in ("LA", "RGBA"):  # JPEG has no alpha: composite onto white
        background = Image.new("RGBA", work.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, work.convert("RGBA")).convert("RGB")
    return work.convert("RGB")


# --------------------------------------------------------------------------------------------------------------------
# memory


def _bytes_per_pixel(mode: str) -> int:
    return 1 if mode in _ONE_BYTE_MODES else 2 if mode in _TWO_BYTE_MODES else 4


def _describe_image(im: Image.Image, name: str | None) -> str:
    width, height = im.size
    return f"{name + ': ' if name else ''}a {width}x{height} {im.mode} {im.format or 'image'}"


def _thumbnail_peak(im: Image.Image, target: tuple[int, int], normalize: bool, out_format: str) -> int:
    """The most bytes making a ``target``-sized thumbnail of ``im`` (as it will be decoded) holds at once: the
    decoded samples, a converted copy, the resampling steps, the 8-bit finishing and the encoded output."""
    pixels = im.size[0] * im.size[1]
    peak = pixels * _bytes_per_pixel(im.mode)
    converted = im.mode not in _WORKING_MODES or "transparency" in im.info
    if converted:
        peak += pixels * 4  # the converted working copy, made while the decoded image is still held
    target_pixels = target[0] * target[1]
    if target != im.size:
        if im.mode in ("LA", "RGBA", "La", "RGBa", "PA") or (converted and im.mode in ("P", "L", "RGB")):
            peak += pixels * 4  # Pillow resizes images with alpha as a premultiplied full-size copy
        # reduce() by an integer factor to between 3 and 6 times the target per side, then a two-pass resample
        peak += min(pixels, 36 * target_pixels) * 4 + 2 * min(pixels, 6 * target_pixels) * 4
    if im.mode in _HIGH_DEPTH_MODES or normalize or out_format == "JPEG":
        peak += target_pixels * _FINISH_BYTES_PER_PIXEL
    return int((peak + target_pixels * _OUTPUT_BYTES_PER_PIXEL) * _ESTIMATE_MARGIN)


def _smallest_decode(im: Image.Image) -> int:
    """Bytes of the cheapest decode there is of ``im`` (a JPEG at 1/8 scale, anything else at full size): more
    than the whole budget means no thumbnail of it can ever be made."""
    width, height = im.size
    if im.format == "JPEG":
        return -(-width // 8) * -(-height // 8) * 4
    return width * height * (_bytes_per_pixel(im.mode) + (0 if im.mode in _WORKING_MODES else 4))


def _prepare_thumbnail(
    data: bytes, max_size: tuple[int, int] | None, fmt: str, name: str | None
) -> tuple[ImageFile.ImageFile, tuple[int, int], str]:
    """Open and check the image; pick the target size and, for JPEGs, the reduced decoding scale."""
    out_format = _output_format(fmt)
    if max_size is not None:
        if len(max_size) != 2:
            raise ValueError(f"max_size must be (width, height), got {max_size!r}")
        max_size = (_positive_int(max_size[0], "max width"), _positive_int(max_size[1], "max height"))
    im = _open(data, name)
    source_size = im.size
    target = source_size if max_size is None else fit_within(source_size, max_size)
    if im.format == "JPEG" and target != source_size:
        # decode at 1/2, 1/4 or 1/8 scale while staying at least twice the target size, then resample properly
        im.draft(None, (target[0] * 2, target[1] * 2))
    return im, target, out_format


def decode_estimate(
    data: bytes, max_size: tuple[int, int] | None, fmt: str = "JPEG", normalize_colors: bool = False
) -> int:
    """The bytes :func:`make_thumbnail` with these arguments reserves from the decode budget (header only)."""
    im, target, out_format = _prepare_thumbnail(data, max_size, fmt, None)
    return _thumbnail_peak(im, target, normalize_colors, out_format)


def make_thumbnail(
    data: bytes,
    max_size: tuple[int, int] | None,
    fmt: str = "JPEG",
    normalize_colors: bool = False,
    *,
    name: str | None = None,
    budget: DecodeBudget = DECODE_BUDGET,
) -> tuple[bytes, int, int]:
    """Encode a thumbnail of a JPEG/PNG/TIFF image; return (encoded bytes, width, height).

    ``max_size`` is (max width, max height): the thumbnail keeps the aspect ratio, fits inside it and is never
    larger than the original (see :func:`fit_within`); None keeps the original size. ``fmt`` is 'JPEG' or 'PNG'.

    Modes: 16-bit and 32-bit integer images are scaled to 8 bits (value / 257), float images from 0..1 (or
    0..255); palette images are expanded (to RGBA when they have transparency), CMYK/YCbCr/LAB to RGB. JPEG output
    is always RGB, with any alpha composited onto white; PNG output keeps L, LA, RGB or RGBA.

    ``normalize_colors`` (the seed's ``normalize_thumbnail_colors`` preprocess) stretches each colour channel of
    the thumbnail from its own min..max to 0..255 (alpha untouched, constant channels unchanged); for high-bit-depth
    images this happens before the reduction to 8 bits, so 12-bit data in a 16-bit container keeps its precision.

    Large JPEGs are decoded at a reduced scale (``Image.draft``) when the thumbnail is at most half their size.
    The peak memory (:func:`decode_estimate`) is reserved from ``budget`` first: an image that needs more than the
    whole budget is an :class:`ImageDecodeError`; a full budget is waited for, then
    :class:`~scenebase.media.budget.DecodeBusy`. Raises :class:`ImageDecodeError` for unusable data and ValueError
    for bad arguments.
    """
    im, target, out_format = _prepare_thumbnail(data, max_size, fmt, name)
    try:
        with budget.reserve(_thumbnail_peak(im, target, normalize_colors, out_format), _describe_image(im, name)):
            return _render_thumbnail(im, target, out_format, normalize_colors, name)
    except DecodeTooLarge as e:
        raise ImageDecodeError(f"image too large to decode: {e.problem}", name=name, image_format=im.format) from None


def _render_thumbnail(
    im: ImageFile.ImageFile, target: tuple[int, int], out_format: str, normalize_colors: bool, name: str | None
) -> tuple[bytes, int, int]:
    _load(im, name)
    source_mode = im.mode
    work = _working_image(im)
    if work is not im:
        im.close()  # the decoded samples: only the converted copy is needed from here on
    if work.size != target:
        work = work.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    work = _for_output(_finish_8bit(work, source_mode, normalize_colors), out_format)

    buffer = io.BytesIO()
    if out_format == "JPEG":
        work.save(buffer, "JPEG", quality=JPEG_QUALITY)
    else:
        work.save(buffer, "PNG")
    return buffer.getvalue(), work.width, work.height


def preset_thumbnail(
    data: bytes, preset: str, normalize_colors: bool = False, *, name: str | None = None
) -> tuple[bytes, int, int, str]:
    """Thumbnail for a named preset of :data:`THUMBNAIL_PRESETS`; return (bytes, width, height, format).

    'tiny' fits in 100x100 and 'small' in 300x300 (JPEG); 'full_size_png' is the original size as PNG.
    """
    if preset not in THUMBNAIL_PRESETS:
        raise ValueError(f"unknown thumbnail preset {preset!r} (valid: {', '.join(THUMBNAIL_PRESETS)})")
    out_format = PRESET_FORMATS[preset]
    blob, width, height = make_thumbnail(data, THUMBNAIL_PRESETS[preset], out_format, normalize_colors, name=name)
    return blob, width, height, out_format


def custom_thumbnail(
    data: bytes,
    desired_shape: Sequence[int],
    normalize_colors: bool = False,
    fmt: str = "JPEG",
    *,
    name: str | None = None,
) -> tuple[bytes, int, int, str]:
    """Thumbnail for the seed's ``desired_shape`` = (height, width, ...); return (bytes, width, height, format).

    The result fits inside width x height with the aspect ratio kept and no upscaling. Entries after the first two
    (e.g. a channel count) are ignored.
    """
    if isinstance(desired_shape, str | bytes) or len(desired_shape) < 2:
        raise ValueError(f"desired_shape must be (height, width) or (height, width, channels), got {desired_shape!r}")
    height = _positive_int(desired_shape[0], "desired_shape height")
    width = _positive_int(desired_shape[1], "desired_shape width")
    out_format = _output_format(fmt)
    blob, out_width, out_height = make_thumbnail(data, (width, height), out_format, normalize_colors, name=name)
    return blob, out_width, out_height, out_format


# --------------------------------------------------------------------------------------------------------------------
# image properties


def _check_property_names(properties: Sequence[str] | str) -> list[str]:
    names = [properties] if isinstance(properties, str) else list(dict.fromkeys(properties))
    unknown = [name for name in names if name not in PROPERTY_NAMES]
    if unknown:
        raise ValueError(
            f"unknown image propert{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))} "
            f"(valid: {', '.join(PROPERTY_NAMES)})"
        )
    return names


def compute_properties(image: Image.Image, properties: Sequence[str]) -> dict[str, float]:
    """:func:`image_properties` for an already decoded Pillow image (e.g. an object crop or a video frame)."""
    names = _check_property_names(properties)
    if not names:
        return {}
    stats = _luma_stats(image, laplacian="variance_of_laplacian" in names)
    values = {"mean_brightness": stats.mean, "rms_contrast": stats.std / 255.0,
              "variance_of_laplacian": stats.laplacian_variance}  # fmt: skip
    return {name: values[name] for name in names}


def _luma_stats(im: Image.Image, laplacian: bool) -> LumaStats:
    """Statistics of the grayscale Y of any Pillow mode: 8-bit modes on the fast exact path, the others in float64.

    Alpha is ignored. High-bit-depth samples are scaled to 0..255 as in thumbnails (16-bit: value / 257)."""
    mode = im.mode
    if mode in _HIGH_DEPTH_MODES:
        luma = np.clip(_high_depth_to_255(np.asarray(im, dtype=np.float64), mode), 0.0, 255.0)
        return float_luma_stats(luma, laplacian)
    if mode == "1":
        im = im.convert("L")
    elif mode in ("P", "PA"):
        im = im.convert("RGB")
    elif mode == "La":
        im = im.convert("LA")
    elif mode not in ("L", "LA", "RGB", "RGBA", "RGBX"):
        im = im.convert("RGB")
    pixels: npt.NDArray[np.uint8] = np.asarray(im)
    if im.mode == "LA":
        pixels = pixels[..., 0]
    return eight_bit_luma_stats(pixels, laplacian)


def image_properties(
    data: bytes, properties: Sequence[str], *, name: str | None = None, budget: DecodeBudget = DECODE_BUDGET
) -> dict[str, float]:
    """Compute the requested properties of a JPEG/PNG/TIFF image, as plain floats keyed by property name.

    On the grayscale Y = 0.2989 R + 0.5870 G + 0.1140 B (0..255; the channel itself for gray images; alpha ignored;
    16-bit samples / 257), at full resolution (see :mod:`scenebase.media.luma` for how this is fast and exact):

    * ``mean_brightness`` = mean(Y);
    * ``rms_contrast`` = population standard deviation of Y / 255;
    * ``variance_of_laplacian`` = population variance of the 3x3 Laplacian [[0,1,0],[1,-4,1],[0,1,0]] of Y over
      the valid region (no padding; 0.0 for images smaller than 3x3).

    Unknown property names raise ValueError listing the valid ones (checked before the image is decoded); a single
    name may be passed as a plain string. Unusable data raises :class:`ImageDecodeError`. The full-size decode
    and the float luma are reserved from ``budget`` first, as in :func:`make_thumbnail`. Thread-safe: the decode
    and the arithmetic release the GIL, so threads computing different images use several cores.
    """
    names = _check_property_names(properties)
    if not names:
        return {}
    im = _open(data, name)
    pixels = im.size[0] * im.size[1]
    needed = int(pixels * (_bytes_per_pixel(im.mode) + 4 + _PROPERTY_BYTES_PER_PIXEL) * _ESTIMATE_MARGIN)
    try:
        with budget.reserve(needed, _describe_image(im, name)):
            _load(im, name)
            return compute_properties(im, names)
    except DecodeTooLarge as e:
        raise ImageDecodeError(f"image too large to decode: {e.problem}", name=name, image_format=im.format) from None
