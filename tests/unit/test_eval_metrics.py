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


def test_stored_thresholds_never_accept_more_impostors_than_the_far_allows() -> None:
    # `facerec eval calibrate` once stored round(threshold, 6): 0.480949 for a boundary
    # impostor at 0.4809491, which `similarity >= threshold` then accepts (FAR doubled)
    rng = np.random.default_rng(7)
    base = np.round(rng.uniform(0.2, 0.6, 12), 3)
    near_ties = np.concatenate([base, base + 1e-7, base + 4e-7, base - 3e-7, [0.4809491] * 3])
    impostor = np.concatenate([near_ties, [0.4809491, 0.4809494, 0.4809496, 0.48094949]])
    genuine = np.array([0.9, 0.7, 0.4809492, 0.4809499, 0.481, 0.5, 0.3])
    scores = np.concatenate([genuine, impostor])
    same = np.concatenate([np.ones(len(genuine), bool), np.zeros(len(impostor), bool)])
    n = len(impostor)
    fars = sorted({k / n for k in range(1, n)} | {0.1, 0.25, 0.4, 0.5})
    found = tar_at_far(scores, same, fars, decimals=6)
    assert set(found) == set(fars)
    for far, (tar, threshold) in found.items():
        assert threshold == round(threshold, 6)  # short enough for a manifest
        # applied as the service applies it: a match is similarity >= threshold
        accepted = sum(float(score) >= threshold for score in impostor)
        assert accepted <= int(np.floor(far * n)), (far, threshold, accepted)
        assert tar == pytest.approx(np.mean([g >= threshold for g in genuine]))


def test_round_up_is_the_smallest_short_number_not_below() -> None:
    from service.evaluation.metrics import round_up

    assert round_up(0.48094910000000005, 6) == 0.480950
    assert round_up(0.48095, 6) == 0.48095  # already short: unchanged
    assert round_up(-0.1234561, 6) == -0.123456
    for t in np.random.default_rng(0).uniform(-1, 1, 2000):
        assert t <= round_up(float(t), 6) < t + 1.000001e-6
