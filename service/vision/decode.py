"""Bounded image decoding: bytes in, a contiguous RGB ``uint8`` ``(H, W, 3)`` array out, or a
typed error (:mod:`service.errors`).

Limits (:class:`DecodeLimits`) are checked in order of cost:

1. ``max_bytes`` (default 20 MiB) on ``len(data)``, before anything is parsed.
2. ``max_pixels`` (40 M) and ``max_side`` (16384) on the size the file's *header* declares,
   read by the format's Pillow plugin without decoding a pixel: a decompression bomb (a
   100-byte PNG declaring 30000×30000) is refused in microseconds, nothing allocated.
   ``max_side`` bounds what ``max_pixels`` lets through (a 1×40 M strip would break every
   resize downstream); 16384 is WebP's own limit and above any camera's long side.
3. Only then the full decode.

The header is read by the plugin class itself, not ``Image.open``, which would also run
Pillow's process-wide bomb check (``Image.MAX_IMAGE_PIXELS``): its ``DecompressionBombWarning``
could only be hidden with ``warnings.catch_warnings``, which is not thread-safe, and decoding
runs in worker threads. No Pillow setting or warnings filter is read or changed here.
WebP's plugin allocates the canvas as it opens, so its size is read from the bytes first
(that plugin still raises at Pillow's 2 × ``MAX_IMAGE_PIXELS``, 179 M by default:
reported as ``ImageTooLarge``, and only reachable with limits raised past it).

Accepted: JPEG (an MPO's first picture too), PNG, WebP, BMP. Another format Pillow knows
(GIF, TIFF, ICO, PSD, …) gives ``UnsupportedFormat`` naming it; empty, unrecognisable,
truncated or corrupt bytes give ``InvalidImage``.

Choices:

* JPEG is decoded by ``cv2.imdecode`` (pixels identical to Pillow's, both libjpeg-turbo;
  ~1.3× faster at 640×480, ~4× at 1920×1080) for YCbCr/grayscale files that end with the EOI
  marker; anything else (CMYK, truncated, trailing bytes, a cv2 failure) goes through Pillow,
  which refuses truncated files (older OpenCV gray-fills them). libjpeg may print "Corrupt
  JPEG data" to stderr for a damaged file that still decodes.
* EXIF orientation (as Pillow reads it) is applied for every format, by one function.
* 16-bit grayscale is scaled ``round(v / 257)``; Pillow reads 16-bit RGB(A) as the high
  byte (``v >> 8``, within one level of that). Never clipped.
* Transparency is composited onto black (``rgb·α/255``), the aligner's border colour, so
  whatever colour hides under transparent pixels never reaches the detector.
* Animated WebP/PNG: the first frame. CMYK: Pillow's conversion.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import BmpImagePlugin, Image, ImageFile, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from service.errors import ImageTooLarge, InvalidImage, UnsupportedFormat
from service.vision.detectors.base import RGBImage

__all__ = ["ACCEPTED_FORMATS", "DecodeLimits", "decode_image"]

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
_ACCEPTED_TEXT = "send JPEG, PNG, WebP or BMP"
_ORIENTATION_TAG = 0x0112
_JPEG_EOI = b"\xff\xd9"
# IMREAD_COLOR_RGB is OpenCV ≥ 4.10; older ones decode BGR and are swapped afterwards
_CV_RGB = hasattr(cv2, "IMREAD_COLOR_RGB")
_CV_FLAGS = getattr(cv2, "IMREAD_COLOR_RGB", cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION


@dataclass(frozen=True)
class DecodeLimits:
    """Refuse images over ``max_bytes`` bytes, ``max_pixels`` pixels or ``max_side`` per side."""

    max_bytes: int = 20 * 2**20
    max_pixels: int = 40_000_000
    max_side: int = 16_384

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "max_side"):
            if getattr(self, name) < 1:
                raise ValueError(f"DecodeLimits.{name} must be at least 1")


DEFAULT_LIMITS = DecodeLimits()


def decode_image(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> RGBImage:
    """Decode ``data`` to a contiguous, writable ``(H, W, 3)`` RGB ``uint8`` array, upright.

    Raises ``ImageTooLarge``, ``UnsupportedFormat`` or ``InvalidImage``; nothing else for
    any input bytes (``MemoryError`` aside).
    """
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"image is {len(data)} bytes; the limit is {limits.max_bytes}")
    if not data:
        raise InvalidImage("empty image")
    kind = _accepted_kind(data)
    if kind is None:
        found = _other_format(data)
        if found is not None:
            raise UnsupportedFormat(f"{found} images are not accepted; {_ACCEPTED_TEXT}")
        raise InvalidImage(f"not a recognised image; {_ACCEPTED_TEXT}")
    if kind == "WEBP":
        _check_size(_webp_size(data), limits)
    try:
        image = _PLUGINS[kind](io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # only if limits exceed Pillow's own
        raise ImageTooLarge(str(exc)) from None
    except MemoryError:
        raise
    except Exception as exc:
        raise InvalidImage(f"unreadable {kind} header: {exc}") from None
    with image:
        _check_size(image.size, limits)
        rgb = None
        if kind == "JPEG" and image.mode in ("RGB", "L") and data.endswith(_JPEG_EOI):
            rgb = _cv2_jpeg(data, image.size)
        try:
            if rgb is None:
                rgb = _pillow_rgb(image)
        except MemoryError:
            raise
        except Exception as exc:
            raise InvalidImage(f"truncated or corrupt {kind} image: {exc}") from None
        return _orient(rgb, _orientation(image))


_PLUGINS: dict[str, type[ImageFile.ImageFile]] = {
    "JPEG": JpegImagePlugin.JpegImageFile,
    "PNG": PngImagePlugin.PngImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
}


def _accepted_kind(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"BM"):
        return "BMP"
    return None


def _other_format(data: bytes) -> str | None:
    """The name of a format Pillow recognises (header only), for the error message."""
    Image.init()  # Pillow's lazy registration of all its plugins, as Image.open would do
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        try:
            if accept is None or not accept(data[:16]):
                continue  # formats without a magic number would match anything
            with factory(io.BytesIO(data), "") as found:
                return found.format or fmt
        except Exception:
            continue
    return None


def _webp_size(data: bytes) -> tuple[int, int]:
    """The canvas size from a WebP's first chunk (VP8, VP8L or VP8X), as libwebp reads it."""
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return (
            int.from_bytes(data[26:28], "little") & 0x3FFF,
            int.from_bytes(data[28:30], "little") & 0x3FFF,
        )
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return (
            int.from_bytes(data[24:27], "little") + 1,
            int.from_bytes(data[27:30], "little") + 1,
        )
    raise InvalidImage("malformed WebP header")


def _check_size(size: tuple[int, int], limits: DecodeLimits) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise InvalidImage(f"image has no pixels ({width}×{height})")
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise ImageTooLarge(
            f"image is {width}×{height}; the limits are {limits.max_pixels} pixels "
            f"and {limits.max_side} per side"
        )


def _cv2_jpeg(data: bytes, size: tuple[int, int]) -> RGBImage | None:
    """OpenCV's decode, orientation not applied; ``None`` to fall back to Pillow."""
    try:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), _CV_FLAGS)
    except cv2.error:
        return None
    if decoded is None or decoded.shape != (size[1], size[0], 3):
        return None
    if not _CV_RGB:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    return np.asarray(decoded, dtype=np.uint8)


def _pillow_rgb(image: Image.Image) -> RGBImage:
    image.load()  # the first frame of an animated file
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        wide = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
        gray = ((wide * 255 + 32767) // 65535).astype(np.uint8)  # round(v / 257)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"))
        alpha = rgba[:, :, 3:].astype(np.uint16)
        return ((rgba[:, :, :3] * alpha + 127) // 255).astype(np.uint8)  # over black
    rgb = image if mode == "RGB" else image.convert("RGB")
    return np.array(rgb, dtype=np.uint8)  # a copy: Pillow's array view is read-only


def _orientation(image: Image.Image) -> int:
    """EXIF orientation 1-8; 1 when absent, out of range or unreadable (a photo with
    broken EXIF is still a photo)."""
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orient(rgb: RGBImage, orientation: int) -> RGBImage:
    """Turn ``rgb`` upright as EXIF ``orientation`` asks (Pillow's ``exif_transpose``)."""
    if orientation == 2:
        out = cv2.flip(rgb, 1)
    elif orientation == 3:
        out = cv2.rotate(rgb, cv2.ROTATE_180)
    elif orientation == 4:
        out = cv2.flip(rgb, 0)
    elif orientation == 5:
        out = cv2.transpose(rgb)
    elif orientation == 6:
        out = cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    elif orientation == 7:
        out = cv2.rotate(cv2.transpose(rgb), cv2.ROTATE_180)
    elif orientation == 8:
        out = cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE)
    else:
        return rgb
    return np.asarray(out, dtype=np.uint8)
