"""Verification and identification data: insightface ``.bin`` sets, LFW-style pairs, and
folders with one sub-folder per identity."""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["PairSet", "identity_folders", "read_bin", "read_pairs", "write_bin"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass(frozen=True)
class PairSet:
    """Images and the pairs over them: ``pairs[i] = (a, b)`` indexes ``images``."""

    images: list[bytes]
    pairs: list[tuple[int, int]]
    same: list[bool]
    aligned: bool  # the images are already 112×112 aligned crops


class _BinUnpickler(pickle.Unpickler):
    """A ``.bin`` holds only lists, tuples, bytes and booleans (NumPy booleans in some sets):
    nothing else is allowed to be constructed, so a crafted file cannot run code."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a .bin verification set")


def read_bin(path: str | os.PathLike[str]) -> PairSet:
    """insightface's ``lfw.bin`` / ``cfp_fp.bin`` / ``agedb_30.bin``: ``(images, issame)``,
    image ``2i`` and ``2i+1`` forming pair ``i``; the images are aligned 112×112 crops."""
    with open(path, "rb") as f:
        bins, issame = _BinUnpickler(f, encoding="bytes").load()
    images = [bytes(b) for b in bins]
    same = [bool(s) for s in issame]
    if len(images) != 2 * len(same):
        raise ValueError(f"{path}: {len(images)} images for {len(same)} pairs")
    return PairSet(images, [(2 * i, 2 * i + 1) for i in range(len(same))], same, aligned=True)


def write_bin(path: str | os.PathLike[str], images: list[bytes], same: list[bool]) -> None:
    """Write a set in the ``.bin`` layout (for tests and for sharing a set of one's own)."""
    buf = io.BytesIO()
    pickle.dump((images, same), buf, protocol=4)
    Path(path).write_bytes(buf.getvalue())


def _lfw_name(folder: Path, person: str, number: str) -> Path:
    return folder / person / f"{person}_{int(number):04d}.jpg"


def read_pairs(pairs_file: str | os.PathLike[str], images_dir: str | os.PathLike[str]) -> PairSet:
    """LFW's ``pairs.txt``: ``name n1 n2`` (same person) or ``name1 n1 name2 n2`` (different),
    images at ``DIR/name/name_000n.jpg``; a first line with the fold sizes is skipped."""
    folder = Path(images_dir)
    paths: dict[Path, int] = {}
    images: list[bytes] = []
    pairs, same = [], []

    def index(path: Path) -> int:
        if path not in paths:
            paths[path] = len(images)
            images.append(path.read_bytes())
        return paths[path]

    for line in Path(pairs_file).read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            a, b = _lfw_name(folder, parts[0], parts[1]), _lfw_name(folder, parts[0], parts[2])
            same.append(True)
        elif len(parts) == 4:
            a, b = _lfw_name(folder, parts[0], parts[1]), _lfw_name(folder, parts[2], parts[3])
            same.append(False)
        else:
            continue
        pairs.append((index(a), index(b)))
    if not pairs:
        raise ValueError(f"{pairs_file}: no pairs found")
    return PairSet(images, pairs, same, aligned=False)


def identity_folders(root: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """``(identity, image path)`` for every image of every sub-folder, sorted."""
    out = []
    for person in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        for image in sorted(person.iterdir()):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                out.append((person.name, image))
    return out
