"""A corpus of hostile images, generated (nothing binary is committed).

Each item says what the API must answer for it when sent as the probe of ``/verify`` or as an
enrolment image, under :data:`LIMITS`: the status and the stable error code. Decoding errors
(bombs, truncation, corruption, other formats) are refused before detection; what decodes
but holds no usable face is ``no_face``; a crowd over ``max_faces`` is ``too_many_faces``.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass

from PIL import Image

__all__ = ["LIMITS", "Hostile", "corpus", "face_tile", "zip_of"]

# the service settings the expectations assume
LIMITS = {
    "max_image_bytes": 2 * 2**20,
    "max_body_bytes": 4 * 2**20,
    "max_image_pixels": 4_000_000,
    "max_image_side": 16_384,
    "max_faces": 3,
}


@dataclass(frozen=True)
class Hostile:
    name: str
    data: bytes
    status: int
    code: str


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _plain(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A face-free picture: a smooth gradient."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    return image


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, idat: bytes, extra: bytes = b"", crc_ok: bool = True) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    header = _png_chunk(b"IHDR", ihdr)
    if not crc_ok:
        header = header[:-4] + bytes(b ^ 0xFF for b in header[-4:])
    return (
        b"\x89PNG\r\n\x1a\n" + header + extra + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    )


def _zeros_deflated(total: int) -> bytes:
    """``total`` zero bytes, deflated, without ever holding them (a zlib bomb)."""
    packer = zlib.compressobj(9)
    block = bytes(2**20)
    parts = []
    for start in range(0, total, len(block)):
        parts.append(packer.compress(block[: min(len(block), total - start)]))
    parts.append(packer.flush())
    return b"".join(parts)


def _jpeg_with_size(width: int, height: int, *, keep_eoi: bool = True) -> bytes:
    """A real 16×16 JPEG whose SOF0 header now declares ``width`` × ``height``."""
    data = bytearray(_encode(_plain((16, 16)), "JPEG", quality=80))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data if keep_eoi else data[:-2])


def _webp_lossless_with_size(width: int, height: int) -> bytes:
    data = bytearray(_encode(_plain((16, 16)), "WEBP", lossless=True))
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    bits = int.from_bytes(data[21:25], "little")
    bits = (bits & ~0x0FFFFFFF) | ((width - 1) & 0x3FFF) | (((height - 1) & 0x3FFF) << 14)
    data[21:25] = bits.to_bytes(4, "little")
    return bytes(data)


def _webp_extended_with_size(width: int, height: int) -> bytes:
    data = bytearray(_encode(_plain((16, 16)), "WEBP", exif=_exif(orientation=1)))
    assert data[12:16] == b"VP8X", data[12:16]
    data[24:27] = (width - 1).to_bytes(3, "little")
    data[27:30] = (height - 1).to_bytes(3, "little")
    return bytes(data)


def _gif_with_size(width: int, height: int) -> bytes:
    data = bytearray(_encode(_plain((16, 16)).convert("P"), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def _bmp_with_size(width: int, height: int) -> bytes:
    data = bytearray(_encode(_plain((16, 16)), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def _exif(orientation: int = 1, entries: int = 0, loop: bool = False, padding: int = 0) -> bytes:
    """A little-endian TIFF/EXIF block: an orientation tag, ``entries`` filler tags, an IFD
    chain that points back at itself (``loop``), ``padding`` bytes of payload."""
    count = 1 + entries
    ifd = struct.pack("<H", count)
    ifd += struct.pack("<HHII", 0x0112, 3, 1, orientation)
    for i in range(entries):
        ifd += struct.pack("<HHII", 0x9000 + (i % 0x0FFF), 4, 1, i)  # LONG, inline
    next_ifd = 8 if loop else 0
    ifd += struct.pack("<I", next_ifd)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(padding)


def _jpeg_with_app1(payloads: list[bytes]) -> bytes:
    base = _encode(_plain(), "JPEG", quality=80)
    segments = b"".join(
        b"\xff\xe1" + struct.pack(">H", len(p) + 2) + p for p in payloads if len(p) + 2 <= 0xFFFF
    )
    return base[:2] + segments + base[2:]


def zip_of(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, data)
    return out.getvalue()


def face_tile(face: bytes, n: int) -> bytes:
    """``face`` (an image holding one face) tiled ``n`` × ``n``: n² faces in one JPEG."""
    one = Image.open(io.BytesIO(face)).convert("RGB")
    tile = Image.new("RGB", (one.width * n, one.height * n))
    for i in range(n):
        for j in range(n):
            tile.paste(one, (i * one.width, j * one.height))
    return _encode(tile, "JPEG", quality=90)


def corpus(face: bytes) -> list[Hostile]:
    """The hostile images; ``face`` is a JPEG holding exactly one face (for the crowd)."""
    rng = random.Random(8)
    plain_jpeg = _encode(_plain(), "JPEG", quality=85)
    plain_png = _encode(_plain(), "PNG")
    plain_webp = _encode(_plain(), "WEBP", quality=80)
    zip_blob = zip_of("payload.html", b"<script>alert(1)</script>" * 40)
    html = (
        b"<!doctype html><html><body><script>fetch('http://127.0.0.1:1/x')</script></body></html>"
    )
    corrupt_scan = bytearray(plain_jpeg)
    sos = corrupt_scan.index(b"\xff\xda")
    for i in range(sos + 20, len(corrupt_scan) - 2, 7):
        corrupt_scan[i] = rng.randrange(256) & 0xFE  # never 0xFF: keep the markers out
    big_exif = _exif(entries=5000)
    items = [
        # nothing, or nothing like an image
        Hostile("zero-bytes", b"", 400, "invalid_image"),
        Hostile("random-bytes", rng.randbytes(4096), 400, "invalid_image"),
        Hostile("text", b"hello, I am not an image\n" * 10, 400, "invalid_image"),
        # decompression bombs: a huge declared size in a tiny file
        Hostile(
            "png-bomb-100000x100000",
            _png(100_000, 100_000, zlib.compress(bytes(1000))),
            413,
            "image_too_large",
        ),
        Hostile(
            "png-zlib-bomb-4096x4096",
            _png(4096, 4096, _zeros_deflated((1 + 4096 * 3) * 4096)),
            413,
            "image_too_large",
        ),
        Hostile("jpeg-bomb-65000x65000", _jpeg_with_size(65_000, 65_000), 413, "image_too_large"),
        Hostile("jpeg-bomb-3000x3000", _jpeg_with_size(3000, 3000), 413, "image_too_large"),
        Hostile(
            "webp-lossless-bomb-16384x16384",
            _webp_lossless_with_size(16_384, 16_384),
            413,
            "image_too_large",
        ),
        Hostile(
            "webp-extended-bomb-100000x100000",
            _webp_extended_with_size(100_000, 100_000),
            413,
            "image_too_large",
        ),
        Hostile("gif-bomb-65535x65535", _gif_with_size(65_535, 65_535), 415, "unsupported_format"),
        Hostile("bmp-bomb-100000x100000", _bmp_with_size(100_000, 100_000), 413, "image_too_large"),
        Hostile("tiff", _encode(_plain(), "TIFF"), 415, "unsupported_format"),
        # a lying header within the limits: what is there decodes, the rest is missing
        Hostile(
            "jpeg-lying-1900x1900",
            _jpeg_with_size(1900, 1900, keep_eoi=False),
            400,
            "invalid_image",
        ),
        # truncated and corrupted
        Hostile("jpeg-truncated", plain_jpeg[: len(plain_jpeg) // 2], 400, "invalid_image"),
        Hostile("png-truncated", plain_png[: len(plain_png) // 2], 400, "invalid_image"),
        Hostile("webp-truncated", plain_webp[: len(plain_webp) // 2], 400, "invalid_image"),
        Hostile("png-header-only", plain_png[:33], 400, "invalid_image"),
        Hostile(
            "png-bad-ihdr-crc",
            _png(64, 48, zlib.compress(bytes(49 * 64 * 3)), crc_ok=False),
            400,
            "invalid_image",
        ),
        Hostile("png-garbage-idat", _png(64, 48, rng.randbytes(600)), 400, "invalid_image"),
        Hostile("png-zero-width", _png(0, 48, zlib.compress(b"")), 400, "invalid_image"),
        Hostile(
            "jpeg-garbage-after-soi", b"\xff\xd8\xff" + rng.randbytes(3000), 400, "invalid_image"
        ),
        Hostile("jpeg-corrupt-scan", bytes(corrupt_scan), 422, "no_face"),
        # polyglots: the image part is read, the rest never is
        Hostile("jpeg+zip", plain_jpeg + zip_blob, 422, "no_face"),
        Hostile("jpeg+html", plain_jpeg + html, 422, "no_face"),
        Hostile("png+zip", plain_png + zip_blob, 422, "no_face"),
        Hostile(
            "gif+zip (gifar)",
            _encode(_plain().convert("P"), "GIF") + zip_blob,
            415,
            "unsupported_format",
        ),
        Hostile("html+jpeg", html + plain_jpeg, 400, "invalid_image"),
        Hostile("zip-holding-a-jpeg", zip_of("face.jpg", plain_jpeg), 400, "invalid_image"),
        Hostile("pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\n" + plain_jpeg, 400, "invalid_image"),
        Hostile(
            "svg-with-remote-image",
            b'<svg xmlns="http://www.w3.org/2000/svg"><image href="http://127.0.0.1:1/x.png"/>'
            b"</svg>",
            400,
            "invalid_image",
        ),
        # EXIF: huge, looping, nonsense
        Hostile(
            "jpeg-exif-2.6MB",
            _jpeg_with_app1([b"Exif\x00\x00" + bytes(65_000)] * 40),
            413,
            "image_too_large",
        ),
        Hostile(
            "jpeg-exif-5000-tags", _jpeg_with_app1([b"Exif\x00\x00" + big_exif]), 422, "no_face"
        ),
        Hostile(
            "jpeg-exif-ifd-loop",
            _jpeg_with_app1([b"Exif\x00\x00" + _exif(loop=True)]),
            422,
            "no_face",
        ),
        Hostile(
            "jpeg-exif-orientation-9999",
            _jpeg_with_app1([b"Exif\x00\x00" + _exif(orientation=9999)]),
            422,
            "no_face",
        ),
        Hostile(
            "png-ztxt-bomb",
            _png(
                64,
                48,
                zlib.compress(bytes(49 * 64 * 3)),
                extra=_png_chunk(b"zTXt", b"Comment\x00\x00" + _zeros_deflated(64 * 2**20)),
            ),
            400,
            "invalid_image",
        ),
        # extreme shapes
        Hostile("png-1x20000", _encode(_plain((1, 20_000)), "PNG"), 413, "image_too_large"),
        Hostile("png-2x16000", _encode(_plain((2, 16_000)), "PNG"), 422, "no_face"),
        Hostile("png-16000x2", _encode(_plain((16_000, 2)), "PNG"), 422, "no_face"),
        Hostile("png-1x1", _encode(_plain((1, 1)), "PNG"), 422, "no_face"),
        # a crowd over the limit
        Hostile("four-faces-tiled", face_tile(face, 2), 422, "too_many_faces"),
    ]
    return items
