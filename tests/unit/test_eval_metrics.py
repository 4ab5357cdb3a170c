"""The paper's metrics on data whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from service.evaluation.metrics import cmc, eer, kfold_accuracy, roc, tar_at_far, threshold_for_far


def test_separable_scores_give_full_accuracy_and_a_threshold_between_them() -> None:
    same = np.array([True, False] * 50)
    scores = np.where(same, 0.8, 0.2) + np.linspace(0, 0.01, 100)
    result = kfold_accuracy(scores, same)
    assert result.mean == 1.0 and result.std == 0.0
    assert all(0.21 < t < 0.8 for t in result.thresholds)


def test_accuracy_counts_by_hand() -> None:
    # 20 pairs: genuine at 0.9 except two at 0.1; impostors at 0.1 → the best threshold
    # leaves exactly those two genuine pairs wrong: 18/20 overall
    same = np.array([True] * 10 + [False] * 10)
    scores = np.array([0.9] * 8 + [0.1] * 2 + [0.1] * 10)
    order = np.random.default_rng(0).permutation(20)
    result = kfold_accuracy(scores[order], same[order], folds=10)
    assert result.mean == pytest.approx(0.9)


def test_tar_at_far_by_hand() -> None:
    impostor = np.arange(1000) / 1000.0  # 0.000 … 0.999
    genuine = np.array([0.5, 0.9985, 0.9995, 1.2])
    scores = np.concatenate([genuine, impostor])
    same = np.concatenate([np.ones(4, bool), np.zeros(1000, bool)])
    # FAR 1e-3 allows 1 of 1000 impostors: the threshold sits just above 0.998
    t = threshold_for_far(scores, same, 1e-3)
    assert 0.998 < t <= 0.999
    assert np.mean(impostor >= t) == pytest.approx(1e-3)
    result = tar_at_far(scores, same, [1e-2, 1e-3, 1e-4])
    assert result[1e-3][0] == pytest.approx(0.75)  # 0.9985, 0.9995, 1.2 of the 4 genuine
    assert result[1e-2][0] == pytest.approx(0.75)
    assert 1e-4 not in result  # not measurable with 1000 impostors


def test_roc_and_eer() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.4])
    same = np.array([True, True, True, True, False, False, False, False])
    far, tar, thresholds = roc(scores, same)
    assert far[0] == 0.0 and tar[0] == 0.25 and far[-1] == 1.0 and tar[-1] == 1.0
    assert np.all(np.diff(thresholds) < 0)
    assert eer(scores, same) == pytest.approx(0.25)


def test_cmc_by_hand() -> None:
    gallery = ["a", "b", "c"]
    probes = ["a", "b", "c", "a"]
    sim = np.array(
        [
            [0.9, 0.1, 0.2],  # a first: rank 1
            [0.8, 0.7, 0.1],  # b second: rank 2
            [0.5, 0.6, 0.4],  # c third: rank 3
            [0.3, 0.2, 0.1],  # a first: rank 1
        ]
    )
    curve = cmc(sim, probes, gallery, max_rank=3)
    np.testing.assert_allclose(curve, [0.5, 0.75, 1.0])
