"""Bounded image decoding: bytes in, an RGB ``uint8`` array out, or a typed error.

Limits are checked in order of cost: the byte count first, then the pixel count read from
the file's header (Pillow's ``Image.open`` parses only the header), and only then the full
decode, so a decompression bomb — a small file declaring a huge canvas — is refused before
any pixel buffer is allocated.

Accepted: JPEG, PNG, WebP, BMP. Choices: EXIF orientation is applied; grayscale, palette and
CMYK images are converted to RGB; 16-bit samples are scaled to 8 bits (``v / 257``, not
truncated); transparency is composited onto black (the colour of the aligner's border); an
animated WebP gives its first frame.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from service.errors import ImageTooLarge, InvalidImage, UnsupportedFormat

__all__ = ["ACCEPTED_FORMATS", "DecodeLimits", "decode_image"]

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
RGBImage = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 15 * 2**20
    max_pixels: int = 40_000_000
    max_side: int = 16_384  # also bounds extreme aspect ratios (1×40M passes max_pixels)


def decode_image(data: bytes, limits: DecodeLimits | None = None) -> RGBImage:
    """Decode ``data`` to a contiguous ``(H, W, 3)`` RGB ``uint8`` array."""
    limits = limits or DecodeLimits()
    if not data:
        raise InvalidImage("empty image")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"image is {len(data)} bytes; the limit is {limits.max_bytes}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(f"image declares too many pixels: {exc}") from None
        except UnidentifiedImageError:
            raise InvalidImage("not a readable image (unknown or corrupt format)") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise InvalidImage(f"not a readable image: {exc}") from None
        with image:
            if image.format not in ACCEPTED_FORMATS:
                raise UnsupportedFormat(
                    f"{image.format or 'unknown'} images are not accepted; send JPEG, PNG, "
                    "WebP or BMP"
                )
            width, height = image.size
            if width < 1 or height < 1:
                raise InvalidImage(f"image has no pixels ({width}×{height})")
            if width * height > limits.max_pixels or max(width, height) > limits.max_side:
                raise ImageTooLarge(
                    f"image is {width}×{height}; the limits are {limits.max_pixels} pixels and "
                    f"{limits.max_side} per side"
                )
            try:
                image.load()  # first frame only for animated files
                upright = ImageOps.exif_transpose(image)
                return _to_rgb(upright)
            except Image.DecompressionBombError as exc:
                raise ImageTooLarge(f"image declares too many pixels: {exc}") from None
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise InvalidImage(f"truncated or corrupt image: {exc}") from None


def _to_rgb(image: Image.Image) -> RGBImage:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        wide = np.asarray(image).astype(np.float32)
        gray = np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "F":
        gray = np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
