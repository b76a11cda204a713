import math

import pytest
import torch

from maskzoo.core.errors import UserError
from maskzoo.core.schedules import (
    CosineSchedule,
    LinearSchedule,
    LogLinearSchedule,
    PolynomialSchedule,
    Schedule,
    get_schedule,
)

SCHEDULES = [
    LinearSchedule(),
    CosineSchedule(),
    PolynomialSchedule(2),
    PolynomialSchedule(0.5),
    LogLinearSchedule(1e-3),
]
IDS = [repr(s) for s in SCHEDULES]
T = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)


@pytest.mark.parametrize("s", SCHEDULES, ids=IDS)
def test_derivative_matches_finite_differences(s: Schedule):
    h = 1e-6
    fd = (s.alpha(T + h) - s.alpha(T - h)) / (2 * h)
    torch.testing.assert_close(s.alpha_prime(T), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("s", SCHEDULES, ids=IDS)
def test_weight_is_minus_alpha_prime_over_mask_prob(s: Schedule):
    expected = -s.alpha_prime(T) / (1 - s.alpha(T))
    torch.testing.assert_close(s.weight(T), expected, rtol=1e-10, atol=0)
    torch.testing.assert_close(s.mask_prob(T), 1 - s.alpha(T), rtol=0, atol=1e-15)
    assert (s.weight(T) > 0).all()


@pytest.mark.parametrize("s", SCHEDULES, ids=IDS)
def test_inverse_round_trip_and_monotone(s: Schedule):
    torch.testing.assert_close(s.t_of_alpha(s.alpha(T)), T, rtol=0, atol=1e-10)
    a = torch.linspace(s.alpha(1.0), 1.0, 33, dtype=torch.float64)
    torch.testing.assert_close(s.alpha(s.t_of_alpha(a)), a, rtol=0, atol=1e-10)
    assert (s.alpha(T).diff() < 0).all()


@pytest.mark.parametrize("s", SCHEDULES, ids=IDS)
def test_boundaries(s: Schedule):
    assert s.alpha(0.0) == 1.0
    assert s.t_of_alpha(1.0) == pytest.approx(0.0, abs=1e-12)
    end = s.eps if isinstance(s, LogLinearSchedule) else 0.0
    assert s.alpha(1.0) == pytest.approx(end, abs=1e-12)
    assert s.t_of_alpha(end) == pytest.approx(1.0, abs=1e-12)
    assert math.isinf(s.weight(0.0))


def test_linear_weight_is_one_over_t_and_float_in_float_out():
    s = LinearSchedule()
    torch.testing.assert_close(s.weight(T), 1 / T)
    assert isinstance(s.weight(0.25), float) and s.weight(0.25) == 4.0
    assert LogLinearSchedule(0.01).weight(0.5) == pytest.approx(2.0)  # MDLM: dsigma / expm1(sigma) = 1/t
    assert PolynomialSchedule(3).weight(0.5) == pytest.approx(6.0)


def test_tensor_dtype_and_shape_preserved():
    t = torch.rand(4, 5, dtype=torch.float32)
    for s in SCHEDULES:
        for fn in (s.alpha, s.alpha_prime, s.weight, s.mask_prob, s.t_of_alpha):
            out = fn(t)
            assert out.shape == t.shape and out.dtype == torch.float32


def test_cosine_is_md4_form():
    s = CosineSchedule()
    torch.testing.assert_close(s.alpha(T), 1 - torch.cos(math.pi / 2 * (1 - T)))


def test_get_schedule():
    assert isinstance(get_schedule("linear"), LinearSchedule)
    assert get_schedule("polynomial", k=3).k == 3.0
    assert get_schedule("loglinear", eps=0.01).eps == 0.01
    s = CosineSchedule()
    assert get_schedule(s) is s
    with pytest.raises(UserError, match="unknown schedule 'cosin'"):
        get_schedule("cosin")
    with pytest.raises(UserError, match="bad arguments"):
        get_schedule("linear", k=2)
    with pytest.raises(UserError):
        PolynomialSchedule(0)
