"""Bounded decoding: typed errors for bad input, correct pixels for the odd-but-valid.

Every image is made here, in memory; no binary is committed.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import time
import tracemalloc
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps, WebPImagePlugin

from service.errors import FaceRecError, ImageTooLarge, InvalidImage, UnsupportedFormat
from service.vision.decode import DEFAULT_LIMITS, DecodeLimits, decode_image

# -- makers ---------------------------------------------------------------------------------


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _noise(width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _rgb(width: int = 64, height: int = 48) -> Image.Image:
    return Image.fromarray(_noise(width, height), "RGB")


def _smooth() -> np.ndarray:
    """48×64 gradients (JPEG keeps them nearly exact, unlike noise)."""
    yy, xx = np.mgrid[0:48, 0:64]
    return np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=-1).astype(np.uint8)


def _quadrants() -> np.ndarray:
    """48×64, one flat colour per quadrant: any flip or turn is visible."""
    out = np.zeros((48, 64, 3), np.uint8)
    out[:24, :32] = (255, 0, 0)
    out[:24, 32:] = (0, 255, 0)
    out[24:, :32] = (0, 0, 255)
    out[24:, 32:] = (255, 255, 255)
    return out


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims ``width``×``height`` RGB pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _chunk(b"IEND", b"")
    )


def _webp_declaring(width: int, height: int) -> bytes:
    """A WebP whose VP8X chunk declares a ``width``×``height`` canvas (libwebp's maximum
    is 16383² — 268 M pixels, a gigabyte of RGBA canvas)."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def _psd() -> bytes:
    """A minimal 4×4 RGB Photoshop file (Pillow reads PSD but cannot write it)."""
    header = b"8BPS" + struct.pack(">H", 1) + b"\0" * 6 + struct.pack(">HIIHH", 3, 4, 4, 8, 3)
    return header + struct.pack(">IIIH", 0, 0, 0, 0) + b"\x80" * 48


def _animated(fmt: str, **params: object) -> bytes:
    red, blue = Image.new("RGB", (16, 8), (255, 0, 0)), Image.new("RGB", (16, 8), (0, 0, 255))
    return _encode(red, fmt, save_all=True, append_images=[blue], duration=100, **params)


def _ramp16() -> np.ndarray:
    return (np.arange(32 * 64, dtype=np.uint32).reshape(32, 64) * 32).astype(np.uint16)


def _png16_gray() -> bytes:
    ok, buf = cv2.imencode(".png", _ramp16())
    assert ok
    return buf.tobytes()


def _png16_rgb() -> np.ndarray:
    ramp = _ramp16()
    return np.stack([ramp, 65535 - ramp, ramp // 3], axis=-1)  # RGB order


def _png16_rgb_bytes() -> bytes:
    ok, buf = cv2.imencode(".png", _png16_rgb()[:, :, ::-1])  # cv2 writes BGR
    assert ok
    return buf.tobytes()


def _jpeg_with_orientation(orientation: int, fmt: str = "JPEG") -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    params: dict[str, object] = {"quality": 100, "subsampling": 0} if fmt == "JPEG" else {}
    return _encode(Image.fromarray(_quadrants()), fmt, exif=exif.tobytes(), **params)


# -- bad input: the typed error and nothing else -----------------------------------------

_JPEG = _encode(_rgb(), "JPEG")
_PNG = _encode(_rgb(), "PNG")

BAD: list[tuple[str, Callable[[], bytes], type[FaceRecError]]] = [
    ("empty", lambda: b"", InvalidImage),
    ("random bytes", lambda: np.random.default_rng(1).bytes(5000), InvalidImage),
    ("text", lambda: b"<html><body>not an image</body></html>", InvalidImage),
    ("jpeg magic only", lambda: b"\xff\xd8\xff\xe0", InvalidImage),
    ("truncated jpeg, in the header", lambda: _JPEG[:300], InvalidImage),
    ("truncated jpeg, in the scan", lambda: _JPEG[: len(_JPEG) * 2 // 3], InvalidImage),
    ("jpeg without its EOI", lambda: _JPEG[:-2], InvalidImage),
    ("truncated png", lambda: _PNG[: len(_PNG) // 2], InvalidImage),
    (
        "png with a bad CRC",
        lambda: _PNG[:-20] + bytes([_PNG[-20] ^ 0xFF]) + _PNG[-19:],
        InvalidImage,
    ),
    ("png magic only", lambda: b"\x89PNG\r\n\x1a\n", InvalidImage),
    ("png declaring 0x0", lambda: _png_declaring(0, 0), InvalidImage),
    ("truncated webp", lambda: _encode(_rgb(), "WEBP")[:60], InvalidImage),
    ("webp with a bad header", lambda: b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 20, InvalidImage),
    ("truncated bmp", lambda: _encode(_rgb(), "BMP")[:100], InvalidImage),
    ("png declaring 30000x30000", lambda: _png_declaring(30000, 30000), ImageTooLarge),
    ("png declaring 1x100000", lambda: _png_declaring(1, 100_000), ImageTooLarge),
    ("webp declaring 16383x16383", lambda: _webp_declaring(16383, 16383), ImageTooLarge),
    ("animated gif", lambda: _animated("GIF"), UnsupportedFormat),
    ("single-frame gif", lambda: _encode(_rgb().convert("P"), "GIF"), UnsupportedFormat),
    ("tiff", lambda: _encode(_rgb(), "TIFF"), UnsupportedFormat),
    ("ico", lambda: _encode(_rgb(32, 32), "ICO"), UnsupportedFormat),
    ("psd", _psd, UnsupportedFormat),
]


@pytest.mark.parametrize(("name", "make", "error"), BAD, ids=[b[0] for b in BAD])
def test_bad_images_give_typed_errors(
    name: str, make: Callable[[], bytes], error: type[FaceRecError]
) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(error) as caught:
            decode_image(make())
    assert type(caught.value) is error and caught.value.message
    assert not seen, [str(w.message) for w in seen]


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "ICO", "PSD"])
def test_unsupported_format_is_named_with_the_accepted_ones(fmt: str) -> None:
    data = _psd() if fmt == "PSD" else _encode(_rgb(32, 32), fmt)
    with pytest.raises(UnsupportedFormat) as caught:
        decode_image(data)
    assert fmt in caught.value.message and "JPEG, PNG, WebP or BMP" in caught.value.message


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_corrupted_files_give_an_array_or_a_typed_error(fmt: str) -> None:
    """Random truncations and byte flips: never an exception other than the typed ones."""
    rng = np.random.default_rng(7)
    original = _encode(Image.fromarray(_smooth()), fmt)
    for trial in range(60):
        data = bytearray(original)
        if trial % 2:
            data = data[: int(rng.integers(1, len(data)))]
        for position in rng.integers(0, len(data), int(rng.integers(1, 8))):
            data[position] = int(rng.integers(0, 256))
        try:
            out = decode_image(bytes(data))
        except (InvalidImage, ImageTooLarge):
            continue
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


# -- valid input: contiguous, writable RGB uint8 ------------------------------------------

GOOD: list[tuple[str, Callable[[], bytes], tuple[int, int]]] = [
    ("1x1 png", lambda: _encode(_rgb(1, 1), "PNG"), (1, 1)),
    ("1x1 jpeg", lambda: _encode(_rgb(1, 1), "JPEG"), (1, 1)),
    ("jpeg", lambda: _JPEG, (48, 64)),
    ("progressive jpeg", lambda: _encode(_rgb(), "JPEG", progressive=True), (48, 64)),
    ("grayscale jpeg", lambda: _encode(_rgb().convert("L"), "JPEG"), (48, 64)),
    ("cmyk jpeg", lambda: _encode(_rgb().convert("CMYK"), "JPEG"), (48, 64)),
    ("jpeg with trailing bytes", lambda: _JPEG + b"\0trailer", (48, 64)),
    ("mpo (a camera's multi-picture jpeg)", lambda: _animated("MPO"), (8, 16)),
    ("png", lambda: _PNG, (48, 64)),
    ("grayscale png", lambda: _encode(_rgb().convert("L"), "PNG"), (48, 64)),
    ("1-bit png", lambda: _encode(_rgb().convert("1"), "PNG"), (48, 64)),
    ("palette png", lambda: _encode(_rgb().convert("P"), "PNG"), (48, 64)),
    (
        "palette png + transparency",
        lambda: _encode(_rgb().convert("P"), "PNG", transparency=0),
        (48, 64),
    ),
    ("grayscale+alpha png", lambda: _encode(_rgb().convert("LA"), "PNG"), (48, 64)),
    ("rgba png", lambda: _encode(_rgb().convert("RGBA"), "PNG"), (48, 64)),
    ("16-bit grayscale png", _png16_gray, (32, 64)),
    ("16-bit rgb png", _png16_rgb_bytes, (32, 64)),
    ("animated png", lambda: _animated("PNG"), (8, 16)),
    ("lossy webp", lambda: _encode(_rgb(), "WEBP"), (48, 64)),
    ("lossless webp", lambda: _encode(_rgb(), "WEBP", lossless=True), (48, 64)),
    ("rgba webp", lambda: _encode(_rgb().convert("RGBA"), "WEBP"), (48, 64)),
    ("animated webp", lambda: _animated("WEBP", lossless=True), (8, 16)),
    ("bmp", lambda: _encode(_rgb(), "BMP"), (48, 64)),
    ("palette bmp", lambda: _encode(_rgb().convert("P"), "BMP"), (48, 64)),
]


@pytest.mark.parametrize(("name", "make", "shape"), GOOD, ids=[g[0] for g in GOOD])
def test_valid_images_become_rgb_uint8(
    name: str, make: Callable[[], bytes], shape: tuple[int, int]
) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = decode_image(make())
    assert out.shape == (*shape, 3) and out.dtype == np.uint8
    assert out.flags.c_contiguous and out.flags.writeable
    assert not seen, [str(w.message) for w in seen]


@pytest.mark.parametrize(
    ("fmt", "params"), [("PNG", {}), ("BMP", {}), ("WEBP", {"lossless": True})]
)
def test_lossless_formats_round_trip_exactly(fmt: str, params: dict[str, object]) -> None:
    source = _noise()
    assert np.array_equal(decode_image(_encode(Image.fromarray(source), fmt, **params)), source)


def test_jpeg_matches_pillow_decode() -> None:
    """The OpenCV fast path gives Pillow's pixels (both are libjpeg-turbo)."""
    for data in (_JPEG, _encode(_rgb(), "JPEG", progressive=True)):
        ours = decode_image(data)
        reference = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1


def test_jpeg_with_trailing_bytes_decodes_like_the_clean_file() -> None:
    assert np.array_equal(decode_image(_JPEG + b"\0trailer"), decode_image(_JPEG))


def test_jpeg_fast_path_is_used_only_when_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenCV decodes whole YCbCr/grayscale JPEGs; a file without its end marker goes to
    Pillow, which refuses truncation (older OpenCV gray-fills the missing rows instead)."""
    calls: list[int] = []

    def gray_filling_imdecode(buf: np.ndarray, flags: int) -> np.ndarray:
        calls.append(flags)
        return np.full((48, 64, 3), 128, np.uint8)

    monkeypatch.setattr(cv2, "imdecode", gray_filling_imdecode)
    assert (decode_image(_JPEG) == 128).all() and len(calls) == 1
    assert decode_image(_encode(_rgb().convert("L"), "JPEG")).shape == (48, 64, 3)
    assert len(calls) == 2
    with pytest.raises(InvalidImage):
        decode_image(_JPEG[: len(_JPEG) * 2 // 3])
    decode_image(_encode(_rgb().convert("CMYK"), "JPEG"))
    assert len(calls) == 2


def test_grayscale_is_replicated_to_three_channels() -> None:
    gray = _noise()[:, :, 0]
    out = decode_image(_encode(Image.fromarray(gray, "L"), "PNG"))
    assert all(np.array_equal(out[:, :, c], gray) for c in range(3))


def test_sixteen_bit_gray_is_scaled_not_truncated() -> None:
    out = decode_image(_png16_gray())
    expected = np.rint(_ramp16() / 257.0).astype(np.uint8)
    assert all(np.array_equal(out[:, :, c], expected) for c in range(3))
    assert out.max() > 200  # keeping the low byte would wrap around instead


def test_sixteen_bit_rgb_keeps_channel_order_and_scale() -> None:
    out = decode_image(_png16_rgb_bytes()).astype(int)
    expected = np.rint(_png16_rgb() / 257.0)
    assert np.abs(out - expected).max() <= 1  # Pillow keeps the high byte: v >> 8


def test_cmyk_jpeg_becomes_rgb() -> None:
    source = _smooth()
    data = _encode(Image.fromarray(source).convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert np.abs(decode_image(data).astype(int) - source).mean() < 2.0


def test_transparency_is_composited_on_black() -> None:
    rgba = np.concatenate([_noise(), _noise(seed=1)[:, :, :1]], axis=2)
    out = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG")).astype(int)
    alpha = rgba[:, :, 3:].astype(int)
    assert np.abs(out - rgba[:, :, :3] * alpha / 255).max() <= 0.5
    hidden = rgba.copy()
    hidden[:, :, 3] = 0  # fully transparent: the colour underneath never shows
    assert not decode_image(_encode(Image.fromarray(hidden, "RGBA"), "PNG")).any()


def test_palette_transparency_is_black() -> None:
    palette = np.zeros((4, 4), np.uint8)
    palette[:2] = 1
    image = Image.fromarray(palette, "P")
    image.putpalette([200, 100, 50, 10, 20, 30])
    out = decode_image(_encode(image, "PNG", transparency=0))
    assert not out[2:].any() and (out[:2] == (10, 20, 30)).all()


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_animated_images_give_their_first_frame(fmt: str) -> None:
    out = decode_image(_animated(fmt, lossless=True) if fmt == "WEBP" else _animated(fmt))
    assert (out == (255, 0, 0)).all()


# -- EXIF orientation -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(fmt: str, orientation: int) -> None:
    data = _jpeg_with_orientation(orientation, fmt)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    out = decode_image(data)
    assert out.shape == expected.shape and out.flags.c_contiguous
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def test_orientation_6_turns_the_photo_clockwise() -> None:
    out = decode_image(_jpeg_with_orientation(6))
    assert out.shape == (64, 48, 3)
    top_right = out[:10, -10:].reshape(-1, 3).mean(axis=0)  # the source's top-left, red
    assert top_right[0] > 240 and top_right[1:].max() < 15


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow's, harmless
def test_broken_exif_is_ignored() -> None:
    """A photo whose EXIF cannot be parsed is still a photo: decoded, orientation 1."""
    app1 = b"Exif\0\0" + b"MM\0*" + b"\xff" * 40
    data = _JPEG[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + _JPEG[2:]
    assert decode_image(data).shape == (48, 64, 3)


# -- limits ---------------------------------------------------------------------------------


def test_default_limits() -> None:
    limits = DEFAULT_LIMITS
    assert (limits.max_bytes, limits.max_pixels, limits.max_side) == (
        20 * 2**20,
        40_000_000,
        16_384,
    )
    assert DecodeLimits() == limits
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LIMITS.max_bytes = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="max_pixels"):
        DecodeLimits(max_pixels=0)


def test_byte_limit_is_checked_before_parsing() -> None:
    junk = np.random.default_rng(1).bytes(5000)  # would be InvalidImage if parsed
    with pytest.raises(ImageTooLarge, match="5000 bytes"):
        decode_image(junk, DecodeLimits(max_bytes=4999))
    assert decode_image(_PNG, DecodeLimits(max_bytes=len(_PNG))).shape == (48, 64, 3)


def test_pixel_and_side_limits_are_inclusive() -> None:
    assert decode_image(_PNG, DecodeLimits(max_pixels=64 * 48, max_side=64)).shape == (48, 64, 3)
    with pytest.raises(ImageTooLarge, match="64×48"):
        decode_image(_PNG, DecodeLimits(max_pixels=64 * 48 - 1))
    with pytest.raises(ImageTooLarge, match="64×48"):
        decode_image(_PNG, DecodeLimits(max_side=63))


def test_png_bomb_is_refused_without_allocating() -> None:
    bomb = _png_declaring(30000, 30000)  # 2.7 GB of RGB if decoded
    assert len(bomb) < 200
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge, match="30000×30000"):
        decode_image(bomb)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 1_000_000, (elapsed, peak)


def test_webp_bomb_is_refused_before_pillow_opens_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's WebP plugin allocates the canvas as it opens the file: it must not be reached."""

    def opened(self: object) -> None:
        raise AssertionError("the WebP plugin was asked to open a bomb")

    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "_open", opened)
    with pytest.raises(ImageTooLarge, match="16383×16383"):
        decode_image(_webp_declaring(16383, 16383))


def test_pillow_global_bomb_limit_plays_no_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our limits alone decide (for JPEG, PNG, BMP); Pillow's warning never fires."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Image.open would refuse 64×48
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fmt in ("JPEG", "PNG", "BMP"):
            assert decode_image(_encode(_rgb(), fmt)).shape == (48, 64, 3)


# -- real photos ------------------------------------------------------------------------------


def _imread_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_photo_decodes_to_rgb_like_opencv(insightface_images: Path) -> None:
    path = insightface_images / "t1.jpg"
    ours = decode_image(path.read_bytes())
    theirs = _imread_rgb(path)
    assert ours.shape == theirs.shape and ours.shape[2] == 3
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
    # the order is RGB, not BGR: swapping the channels is far off
    assert np.abs(ours.astype(int) - theirs[:, :, ::-1].astype(int)).mean() > 5.0


def test_png_photo_decodes_exactly(insightface_images: Path) -> None:
    path = insightface_images / "Tom_Hanks_54745.png"
    theirs = _imread_rgb(path)
    assert np.array_equal(decode_image(path.read_bytes()), theirs)


def test_decoding_is_thread_safe(insightface_images: Path) -> None:
    inputs = [(insightface_images / "t1.jpg").read_bytes(), _PNG, _jpeg_with_orientation(6)] * 8
    expected = [decode_image(data) for data in inputs]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(decode_image, inputs))
    assert all(np.array_equal(a, b) for a, b in zip(results, expected, strict=True))
