"""The template index: exact search, lazy deletion, replacement, compaction."""

from __future__ import annotations

import numpy as np

from service.gallery.index import TemplateIndex


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_search_equals_brute_force() -> None:
    vectors, queries = _unit(500, 64, 0), _unit(20, 64, 1)
    index = TemplateIndex(64)
    index.upsert(np.arange(1, 501), vectors)
    scores, seqs = index.search(queries, 5)
    truth = queries @ vectors.T
    expected = np.argsort(-truth, axis=1)[:, :5] + 1
    np.testing.assert_array_equal(seqs, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(truth, expected - 1, axis=1), atol=1e-5)


def test_removed_and_replaced_templates_vanish_at_once() -> None:
    vectors = _unit(100, 32, 2)
    index = TemplateIndex(32, compact_every=1000)
    index.upsert(np.arange(100), vectors)
    index.remove([7])
    _, seqs = index.search(vectors[7:8], 100)
    assert 7 not in seqs and len(index) == 99 and (seqs >= 0).sum() == 99
    index.upsert([3], vectors[50:51])  # identity 3 now looks like 50
    _, seqs = index.search(vectors[3:4], 1)
    assert seqs[0, 0] != 3
    _, seqs = index.search(vectors[50:51], 2)
    assert set(seqs[0]) == {3, 50}
    assert index.stored == 101  # two stale vectors still stored, until compaction
    index.compact()
    assert index.stored == 99 and len(index) == 99


def test_compaction_happens_by_itself() -> None:
    index = TemplateIndex(16, compact_every=10)
    index.upsert(np.arange(50), _unit(50, 16, 3))
    index.remove(np.arange(10))
    assert index.stored == 40


def test_empty_index_and_k_beyond_size() -> None:
    index = TemplateIndex(8)
    scores, seqs = index.search(_unit(2, 8, 4), 3)
    assert (seqs == -1).all() and np.isneginf(scores).all()
    index.upsert([1, 2], _unit(2, 8, 5))
    _, seqs = index.search(_unit(1, 8, 6), 5)
    assert sorted(seqs[0][:2]) == [1, 2] and (seqs[0][2:] == -1).all()
