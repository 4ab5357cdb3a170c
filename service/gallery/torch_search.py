"""Exact inner-product search on a GPU with PyTorch, where faiss-gpu cannot be installed.

The gallery is one ``(N, D)`` matrix in fp16 or fp32 on the device, grown by doubling; a
search is a matrix product of the queries with it and a top-k, in slices of the gallery so
the score matrix stays bounded (``slice_rows`` × queries). With unit vectors the inner
product is the cosine. fp16 storage halves memory and bandwidth; its scores differ from
fp32's by about 1e-3, which can swap neighbours whose scores are that close (the benchmark
reports recall against fp32).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["TorchFlatSearch", "TorchIDMap"]


class TorchFlatSearch:
    def __init__(
        self,
        dim: int,
        device: str = "cuda",
        precision: str = "fp16",
        slice_rows: int = 2_000_000,
    ) -> None:
        import torch

        if precision not in ("fp16", "fp32"):
            raise ValueError(f"precision is fp16 or fp32, not {precision!r}")
        self._torch = torch
        self.dim = dim
        self.device = torch.device(device)
        self.precision = precision
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        self._slice = slice_rows
        self._data: Any = torch.empty((1024, dim), dtype=self._dtype, device=self.device)
        self.ntotal = 0

    def add(self, vectors: npt.NDArray[np.float32] | Any) -> None:
        """Append ``(n, D)`` unit vectors (numpy, or a tensor already on the device)."""
        torch = self._torch
        x = torch.as_tensor(vectors).to(self.device, self._dtype).reshape(-1, self.dim)
        need = self.ntotal + len(x)
        if need > len(self._data):
            grown = torch.empty(
                (max(need, 2 * len(self._data)), self.dim), dtype=self._dtype, device=self.device
            )
            grown[: self.ntotal] = self._data[: self.ntotal]
            self._data = grown
        self._data[self.ntotal : need] = x
        self.ntotal = need

    def search(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """``(scores, ids)`` ``(Q, k)``, best first; ids are insertion order, -1 pads."""
        torch = self._torch
        q = torch.as_tensor(np.ascontiguousarray(queries, np.float32)).to(self.device)
        q = q.reshape(-1, self.dim).to(self._dtype)
        best_scores: Any = None
        best_ids: Any = None
        with torch.inference_mode():
            for start in range(0, self.ntotal, self._slice):
                block = self._data[start : min(self.ntotal, start + self._slice)]
                scores = q @ block.T
                top = min(k, len(block))
                s, i = torch.topk(scores, top, dim=1)
                i = i + start
                if best_scores is None:
                    best_scores, best_ids = s, i
                else:
                    s = torch.cat([best_scores, s], dim=1)
                    i = torch.cat([best_ids, i], dim=1)
                    best_scores, pick = torch.topk(s, min(k, s.shape[1]), dim=1)
                    best_ids = torch.gather(i, 1, pick)
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_i = np.full((len(q), k), -1, np.int64)
        if best_scores is not None:
            n = best_scores.shape[1]
            out_s[:, :n] = best_scores.float().cpu().numpy()
            out_i[:, :n] = best_ids.cpu().numpy()
        return out_s, out_i

    def memory_mb(self) -> float:
        return round(self.ntotal * self.dim * int(self._data.element_size()) / 2**20, 1)


class TorchIDMap:
    """:class:`TorchFlatSearch` with caller-chosen int64 ids, in the shape of FAISS's
    ``IndexIDMap2`` as :class:`~service.gallery.index.TemplateIndex` uses it."""

    def __init__(self, dim: int, device: str = "cuda", precision: str = "fp32") -> None:
        self._flat = TorchFlatSearch(dim, device, precision)
        self._ids = np.empty(0, np.int64)

    @property
    def ntotal(self) -> int:
        return self._flat.ntotal

    def add_with_ids(self, vectors: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]) -> None:
        self._flat.add(vectors)
        self._ids = np.concatenate([self._ids, np.asarray(ids, np.int64)])

    def remove_ids_array(self, dead: npt.NDArray[np.int64]) -> None:
        keep = ~np.isin(self._ids, dead)
        if keep.all():
            return
        flat = self._flat
        rows = flat._torch.as_tensor(np.flatnonzero(keep), device=flat.device)
        kept = flat._data[: flat.ntotal].index_select(0, rows)
        flat.ntotal = 0
        flat.add(kept)
        self._ids = self._ids[keep]

    def search(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        scores, rows = self._flat.search(queries, k)
        ids = np.where(rows >= 0, self._ids[np.maximum(rows, 0)], -1)
        return scores, ids
