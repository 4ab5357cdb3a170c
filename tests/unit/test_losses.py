"""The combined margin (Eq. 4): formulas, the θ + m > π branch, finite gradients, fp16."""

from __future__ import annotations

import math

import pytest
import torch

from model_export.losses import (
    ARCFACE,
    COSFACE,
    MARGINS,
    NORM_SOFTMAX,
    SPHEREFACE,
    CombinedMarginLoss,
    Margin,
    MarginHead,
)

S = 64.0


def _logits_at(thetas: torch.Tensor, margin: Margin, classes: int = 3) -> torch.Tensor:
    """Rows whose target (column 0) makes angle θ; other columns fixed cosines."""
    cos = torch.full((len(thetas), classes), 0.25, dtype=torch.float64)
    cos[:, 0] = torch.cos(thetas)
    labels = torch.zeros(len(thetas), dtype=torch.long)
    return CombinedMarginLoss(margin)(cos, labels)


@pytest.mark.parametrize("name", ["arcface", "cosface", "sphereface", "norm-softmax"])
def test_target_logit_is_s_cos_m1_theta_plus_m2_minus_m3(name: str) -> None:
    margin = MARGINS[name]
    # angles where m1·θ + m2 stays below π, so Eq. 4 holds exactly
    top = (math.pi - margin.m2) / margin.m1
    thetas = torch.linspace(0.05, top - 0.05, 41, dtype=torch.float64)
    logits = _logits_at(thetas, margin)
    expected = margin.s * (torch.cos(margin.m1 * thetas + margin.m2) - margin.m3)
    torch.testing.assert_close(logits[:, 0], expected.float(), atol=2e-4, rtol=0)


def test_the_named_settings_are_the_papers() -> None:
    assert (ARCFACE.m1, ARCFACE.m2, ARCFACE.m3, ARCFACE.s) == (1.0, 0.5, 0.0, 64.0)
    assert (COSFACE.m1, COSFACE.m2, COSFACE.m3) == (1.0, 0.0, 0.35)
    assert (SPHEREFACE.m1, SPHEREFACE.m2, SPHEREFACE.m3) == (1.35, 0.0, 0.0)
    assert (NORM_SOFTMAX.m1, NORM_SOFTMAX.m2, NORM_SOFTMAX.m3) == (1.0, 0.0, 0.0)
    theta = torch.tensor([1.0], dtype=torch.float64)
    arc, cos, sphere, plain = (
        _logits_at(theta, m)[0, 0].item() for m in (ARCFACE, COSFACE, SPHEREFACE, NORM_SOFTMAX)
    )
    assert arc == pytest.approx(S * math.cos(1.5), abs=1e-4)
    assert cos == pytest.approx(S * (math.cos(1.0) - 0.35), abs=1e-4)
    assert sphere == pytest.approx(S * math.cos(1.35), abs=1e-4)
    assert plain == pytest.approx(S * math.cos(1.0), abs=1e-4)


@pytest.mark.parametrize("margin", [ARCFACE, COSFACE, SPHEREFACE, Margin(1.2, 0.3, 0.1, 30.0)])
def test_non_target_logits_are_s_cos_theta(margin: Margin) -> None:
    cos = torch.rand(8, 5, dtype=torch.float64) * 2 - 1
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    logits = CombinedMarginLoss(margin)(cos, labels)
    mask = torch.ones_like(cos, dtype=torch.bool)
    mask[torch.arange(8), labels] = False
    torch.testing.assert_close(logits[mask], (margin.s * cos[mask]).float())


def test_rows_labelled_minus_one_get_no_margin() -> None:
    cos = torch.tensor([[0.5, 0.2], [0.3, 0.9]])
    logits = CombinedMarginLoss(ARCFACE)(cos, torch.tensor([-1, 1]))
    torch.testing.assert_close(logits[0], S * cos[0])
    assert logits[1, 1].item() == pytest.approx(S * math.cos(math.acos(0.9) + 0.5), abs=1e-3)


@pytest.mark.parametrize("margin", [ARCFACE, SPHEREFACE, Margin(1.0, 0.5, 0.2), COSFACE])
def test_target_logit_keeps_decreasing_past_pi(margin: Margin) -> None:
    thetas = torch.linspace(0.0, math.pi, 2001, dtype=torch.float64)
    target = _logits_at(thetas, margin)[:, 0]
    assert torch.isfinite(target).all()
    steps = target[1:] - target[:-1]
    assert (steps <= 1e-4).all(), f"target logit rises by {steps.max().item():.4g}"
    # past π it never climbs back above the value at the switch
    switch = (math.pi - margin.m2) / margin.m1
    if switch < math.pi:
        at_switch = margin.s * (-1.0 - margin.m3)
        assert (target[thetas > switch] <= at_switch + 1e-3).all()


def test_arcface_past_pi_is_cos_theta_minus_m_sin_m() -> None:
    m = ARCFACE.m2
    thetas = torch.tensor([math.pi - m + 0.05, 3.0, math.pi], dtype=torch.float64)
    target = _logits_at(thetas, ARCFACE)[:, 0]
    expected = S * (torch.cos(thetas) - m * math.sin(m))
    torch.testing.assert_close(target, expected.float(), atol=1e-3, rtol=0)


def _formula(margin: Margin, cos_theta: float) -> float:
    """Eq. 4 by hand, with the replacement past π that the module documents."""
    theta = math.acos(cos_theta)
    angle = margin.m1 * theta + margin.m2
    if margin.m1 == 1.0:
        if angle > math.pi:
            return margin.s * (cos_theta - margin.m2 * math.sin(margin.m2) - margin.m3)
        return margin.s * (math.cos(angle) - margin.m3)
    k = math.floor(angle / math.pi)
    return margin.s * ((-1) ** k * math.cos(angle) - 2 * k - margin.m3)


@pytest.mark.parametrize("margin", [ARCFACE, SPHEREFACE, Margin(1.0, 0.5, 0.2), COSFACE])
@pytest.mark.parametrize("cos_theta", [1.0, -1.0])
def test_logits_at_cos_plus_minus_one_equal_the_formula(margin: Margin, cos_theta: float) -> None:
    # a clamp of the cosine before the margin shifted these ends (ArcFace at cos θ = 1:
    # 56.1215 instead of 64·cos 0.5 = 56.1653)
    for autocast in (False, True):
        cos = torch.tensor([[cos_theta, 0.0]], requires_grad=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = CombinedMarginLoss(margin)(cos, torch.tensor([0]))
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0]))
        assert logits[0, 0].item() == pytest.approx(_formula(margin, cos_theta), rel=1e-6)
        loss.backward()
        assert cos.grad is not None and torch.isfinite(cos.grad).all()


def test_arcface_target_logit_jumps_down_at_pi_minus_m() -> None:
    # the pre-December-2022 arcface_torch fallback is not a first-order expansion of
    # cos(θ + m): at θ = π − m the target logit drops from −s to −s·(cos m + m·sin m)
    m = ARCFACE.m2
    switch = math.pi - m
    thetas = torch.tensor([switch - 1e-6, switch + 1e-6], dtype=torch.float64)
    before, after = _logits_at(thetas, ARCFACE)[:, 0].tolist()
    assert before == pytest.approx(-S, abs=1e-3)
    assert after == pytest.approx(-S * (math.cos(m) + m * math.sin(m)), abs=1e-3)
    assert before - after == pytest.approx(7.5, abs=0.05)


def test_sphereface_psi_is_continuous_at_pi() -> None:
    switch = math.pi / SPHEREFACE.m1
    thetas = torch.tensor([switch - 1e-4, switch + 1e-4], dtype=torch.float64)
    before, after = _logits_at(thetas, SPHEREFACE)[:, 0].tolist()
    assert before == pytest.approx(-S, abs=0.05)
    assert after == pytest.approx(-S, abs=0.05)


@pytest.mark.parametrize("margin", [ARCFACE, COSFACE, SPHEREFACE, NORM_SOFTMAX])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_gradients_are_finite_at_cos_plus_minus_one(margin: Margin, dtype: torch.dtype) -> None:
    cos = torch.tensor(
        [[1.0, -1.0, 0.0], [-1.0, 1.0, 0.5], [1.0, 1.0, -1.0], [0.999, -0.999, 0.0]], dtype=dtype
    ).requires_grad_()
    labels = torch.tensor([0, 0, 2, 1])
    logits = CombinedMarginLoss(margin)(cos, labels)
    assert logits.dtype == torch.float32
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    assert torch.isfinite(logits).all() and torch.isfinite(loss)
    assert cos.grad is not None and cos.grad.dtype == dtype
    assert torch.isfinite(cos.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_head_under_cpu_autocast_has_finite_gradients(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    head = MarginHead(16, 10, ARCFACE)
    features = torch.randn(32, 16, requires_grad=True)
    labels = torch.randint(0, 10, (32,))
    # identical feature and centre: cos θ = 1 exactly for the first sample
    with torch.no_grad():
        head.weight[labels[0]] = features[0].detach()
    with torch.autocast("cpu", dtype=dtype):
        projected = torch.nn.functional.linear(features, torch.eye(16))
        logits = head(projected, labels)
        loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    assert torch.isfinite(loss)
    assert features.grad is not None and torch.isfinite(features.grad).all()
    assert head.weight.grad is not None and torch.isfinite(head.weight.grad).all()


def test_margin_makes_the_loss_harder_than_norm_softmax() -> None:
    torch.manual_seed(1)
    cos = torch.rand(64, 8) * 1.6 - 0.8
    labels = torch.randint(0, 8, (64,))
    ce = torch.nn.functional.cross_entropy
    plain = ce(CombinedMarginLoss(NORM_SOFTMAX)(cos, labels), labels)
    for margin in (ARCFACE, COSFACE, SPHEREFACE):
        assert ce(CombinedMarginLoss(margin)(cos, labels), labels) > plain


def test_bad_margins_and_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="m1 >= 1"):
        Margin(0.5, 0.0, 0.0)
    with pytest.raises(ValueError, match="π/2"):
        Margin(1.0, 2.0, 0.0)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        CombinedMarginLoss()(torch.zeros(4), torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("name", ["arcface", "cosface", "sphereface", "norm-softmax"])
def test_sgd_with_each_head_learns_separable_classes(name: str) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster on a shared CPU
    try:
        _learn(name)
    finally:
        torch.set_num_threads(threads)


def _learn(name: str) -> None:
    torch.manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(6, 16), dim=1)
    labels = torch.arange(6).repeat(40)
    x = centres[labels] * 3 + 0.3 * torch.randn(len(labels), 16)
    embed = torch.nn.Linear(16, 8)
    head = MarginHead(8, 6, MARGINS[name].with_scale(16.0))
    optimizer = torch.optim.SGD([*embed.parameters(), *head.parameters()], lr=0.1, momentum=0.9)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(head(embed(x), labels), labels)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(loss.item())
    accuracy = (head.cosine(embed(x)).argmax(1) == labels).float().mean().item()
    assert losses[-1] < 0.5 * losses[0]
    assert accuracy == 1.0
