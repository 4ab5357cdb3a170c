"""Bounded decoding: typed errors for bad input, correct pixels for the odd-but-valid."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from service.errors import FaceRecError, ImageTooLarge, InvalidImage, UnsupportedFormat
from service.vision.decode import DecodeLimits, decode_image


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _rgb(width: int = 64, height: int = 48) -> Image.Image:
    arr = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(arr, "RGB")


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` RGB pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def _cmyk_jpeg() -> bytes:
    return _encode(_rgb().convert("CMYK"), "JPEG")


def _animated_gif() -> bytes:
    frames = [
        _rgb().convert("P"),
        _rgb(64, 48).transpose(Image.Transpose.FLIP_LEFT_RIGHT).convert("P"),
    ]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def _png16() -> bytes:
    ramp = (np.arange(64 * 32, dtype=np.uint32).reshape(32, 64) * 32).astype(np.uint16)
    ok, buf = cv2.imencode(".png", ramp)
    assert ok
    return buf.tobytes()


BAD: list[tuple[str, Callable[[], bytes], type[FaceRecError]]] = [
    ("empty", lambda: b"", InvalidImage),
    ("random bytes", lambda: np.random.default_rng(1).bytes(5000), InvalidImage),
    ("truncated jpeg", lambda: _encode(_rgb(), "JPEG")[:300], InvalidImage),
    ("jpeg header only", lambda: b"\xff\xd8\xff\xe0", InvalidImage),
    ("png declaring 30000x30000", lambda: _png_declaring(30000, 30000), ImageTooLarge),
    ("png declaring 1x100000", lambda: _png_declaring(1, 100_000), ImageTooLarge),
    ("animated gif", _animated_gif, UnsupportedFormat),
    ("single-frame gif", lambda: _encode(_rgb().convert("P"), "GIF"), UnsupportedFormat),
    ("tiff", lambda: _encode(_rgb(), "TIFF"), UnsupportedFormat),
    ("ico", lambda: _encode(_rgb(32, 32), "ICO"), UnsupportedFormat),
    ("text", lambda: b"<html><body>not an image</body></html>", InvalidImage),
]


@pytest.mark.parametrize(("name", "make", "error"), BAD, ids=[b[0] for b in BAD])
def test_bad_images_give_typed_errors(name: str, make: Callable[[], bytes], error: type) -> None:
    with pytest.raises(error) as caught:
        decode_image(make())
    assert caught.value.message and caught.value.status in (400, 413, 415)


GOOD: list[tuple[str, Callable[[], bytes], tuple[int, int]]] = [
    ("1x1 png", lambda: _encode(_rgb(1, 1), "PNG"), (1, 1)),
    ("jpeg", lambda: _encode(_rgb(), "JPEG"), (48, 64)),
    ("webp", lambda: _encode(_rgb(), "WEBP"), (48, 64)),
    ("bmp", lambda: _encode(_rgb(), "BMP"), (48, 64)),
    ("cmyk jpeg", _cmyk_jpeg, (48, 64)),
    ("grayscale png", lambda: _encode(_rgb().convert("L"), "PNG"), (48, 64)),
    ("palette png", lambda: _encode(_rgb().convert("P"), "PNG"), (48, 64)),
    ("rgba png", lambda: _encode(_rgb().convert("RGBA"), "PNG"), (48, 64)),
    ("16-bit png", _png16, (32, 64)),
]


@pytest.mark.parametrize(("name", "make", "shape"), GOOD, ids=[g[0] for g in GOOD])
def test_valid_images_become_rgb_uint8(name: str, make: Callable[[], bytes], shape: tuple) -> None:
    out = decode_image(make())
    assert out.shape == (*shape, 3) and out.dtype == np.uint8 and out.flags.c_contiguous


def test_sixteen_bit_samples_are_scaled_not_truncated() -> None:
    out = decode_image(_png16())
    ramp = (np.arange(64 * 32, dtype=np.uint32).reshape(32, 64) * 32).astype(np.uint16)
    expected = np.rint(ramp / 257.0).astype(np.uint8)
    assert np.array_equal(out[:, :, 0], expected) and np.array_equal(out[:, :, 2], expected)
    assert out.max() > 200  # truncating to the low byte would wrap around instead


def test_transparency_is_composited_on_black() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half fully transparent red
    out = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (out[:2, :, 0] == 200).all() and (out[2:] == 0).all()


def test_exif_orientation_is_applied() -> None:
    image = _rgb(64, 48)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = decode_image(_encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.shape == (64, 48, 3)


def test_byte_limit_is_checked_first() -> None:
    with pytest.raises(ImageTooLarge, match="bytes"):
        decode_image(_encode(_rgb(), "PNG"), DecodeLimits(max_bytes=100))


def test_pixel_limit_from_settings() -> None:
    with pytest.raises(ImageTooLarge, match="64×48"):
        decode_image(_encode(_rgb(), "PNG"), DecodeLimits(max_pixels=1000))


def test_decompression_bomb_is_refused_cheaply() -> None:
    bomb = _png_declaring(30000, 30000)  # 2.7 GB of pixels if decoded
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge):
        decode_image(bomb)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 5_000_000, (elapsed, peak)


def test_photo_decodes_to_rgb_like_opencv(insightface_images: Path) -> None:
    data = (insightface_images / "t1.jpg").read_bytes()
    ours = decode_image(data)
    theirs = cv2.cvtColor(cv2.imread(str(insightface_images / "t1.jpg")), cv2.COLOR_BGR2RGB)
    assert ours.shape == theirs.shape
    # two JPEG decoders may round differently; the channel order must agree exactly
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 1.0
    swapped = np.abs(ours.astype(int) - theirs[..., ::-1].astype(int)).mean()
    assert swapped > 5.0
