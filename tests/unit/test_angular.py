"""Angular statistics of 2-D features: centres, extents and the gap between neighbours."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model_export.training.angular import angular_gap, class_arcs, wrap


def _features(
    centres_deg: list[float], half_width_deg: float, n: int = 21
) -> tuple[
    np.ndarray, np.ndarray  # type: ignore[type-arg]
]:
    angles, labels = [], []
    for label, centre in enumerate(centres_deg):
        spread = np.linspace(-half_width_deg, half_width_deg, n)
        angles.extend(np.radians(centre + spread))
        labels.extend([label] * n)
    a = np.asarray(angles)
    radius = 1.0 + np.arange(len(a)) % 3  # the norm must not matter
    return np.stack([np.cos(a), np.sin(a)], axis=1) * radius[:, None], np.asarray(labels)


def test_gap_of_evenly_spread_classes() -> None:
    # 8 classes 45° apart, each 10° wide: 35° between neighbours
    features, labels = _features([45.0 * k for k in range(8)], 5.0)
    gap, _ = angular_gap(features, labels)
    assert math.degrees(gap) == pytest.approx(35.0, abs=1e-6)


def test_gap_names_the_nearest_pair_across_the_wrap_around() -> None:
    # classes at 170° and -170° (= 190°) are 20° apart across ±180°
    features, labels = _features([170.0, -170.0, 0.0, 90.0], 4.0)
    gap, pair = angular_gap(features, labels)
    assert math.degrees(gap) == pytest.approx(12.0, abs=1e-6)
    assert pair == (0, 1)


def test_overlapping_classes_give_a_negative_gap() -> None:
    features, labels = _features([0.0, 10.0, 180.0], 8.0)
    gap, pair = angular_gap(features, labels)
    assert math.degrees(gap) == pytest.approx(-6.0, abs=1e-6)
    assert pair == (0, 1)


def test_a_stray_sample_widens_the_extent_unless_quantiles_trim_it() -> None:
    features, labels = _features([0.0, 90.0, 180.0, 270.0], 5.0, n=201)
    stray = np.array([[math.cos(math.radians(60.0)), math.sin(math.radians(60.0))]])
    features, labels = np.vstack([features, stray]), np.append(labels, 0)
    full, _ = angular_gap(features, labels, q=0.0)
    trimmed, _ = angular_gap(features, labels, q=0.01)
    assert math.degrees(full) == pytest.approx(90 - 60 - 5, abs=0.5)
    assert math.degrees(trimmed) == pytest.approx(80.0, abs=0.5)


def test_arcs_are_sorted_counter_clockwise_with_centres() -> None:
    features, labels = _features([100.0, -30.0, 10.0], 3.0)
    arcs = class_arcs(features, labels)
    assert [a.label for a in arcs] == [1, 2, 0]
    assert math.degrees(arcs[2].centre) == pytest.approx(100.0, abs=1e-6)
    assert math.degrees(arcs[2].hi - arcs[2].lo) == pytest.approx(6.0, abs=1e-6)


def test_wrap_and_bad_input() -> None:
    assert float(wrap(3 * math.pi / 2)) == pytest.approx(-math.pi / 2)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        angular_gap(np.zeros((4, 3)), np.zeros(4, dtype=int))
