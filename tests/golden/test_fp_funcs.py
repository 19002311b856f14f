"""golden.fp_funcs (reciprocal, rsqrt, exp) against float64 with the bound each method derives:
exhaustive over every bf16 and fp16 encoding, seeded random fp32 encodings plus corner cases; and
against PyTorch's fp32 functions within our bound plus one unit in the last place of theirs."""

import numpy as np
import pytest
import torch

from lutforge.golden import fp_funcs as F
from lutforge.golden.convert import decode, encode
from lutforge.golden.formats import get

FUNCS = {
    "reciprocal": (F.reciprocal, lambda x: 1 / x, lambda fmt, x: F.reciprocal_bound(fmt)),
    "rsqrt": (F.rsqrt, lambda x: 1 / np.sqrt(x), lambda fmt, x: F.rsqrt_bound(fmt)),
    "exp": (F.exp, np.exp, lambda fmt, x: F.exp_bound(fmt, np.abs(x) / np.log(2))),
}


def fp32_inputs(n=100_000, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    corners = encode(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 2.0, 0.5, 3.0, 1.5,
                               np.finfo(np.float32).max, np.finfo(np.float32).tiny, 1e-45, -1e-45,
                               88.72, 88.73, -87.3, -103.97, -104.0, 1.9999999, 1.0000001]), "fp32")
    return np.concatenate([corners, rng.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32)])


def inputs(fmt_name):
    fmt = get(fmt_name)
    if fmt.width == 16:
        return np.arange(1 << 16, dtype=np.uint64).astype(fmt.dtype)
    return fp32_inputs()


def check_against_float64(name, fmt_name, **kw):
    """Every output: exact specials, relative error within the bound for normal results, the bound
    plus half a subnormal step below, Inf only where the bound allows overflow."""
    fmt = get(fmt_name)
    func, exact, bound = FUNCS[name]
    a = inputs(fmt_name)
    x = decode(a, fmt)
    got = decode(func(a, fmt, **kw), fmt)
    with np.errstate(all="ignore"):  # float64's own overflow and 0·Inf in the reference are expected
        true = exact(x)
        return _compare(name, fmt, got, true, np.broadcast_to(bound(fmt, x), x.shape))


def _compare(name, fmt, got, true, b):
    tiny, max_finite = 2.0 ** fmt.emin, decode(np.array(fmt.max_finite, fmt.dtype), fmt)
    special = ~np.isfinite(true) | (true == 0)
    np.testing.assert_array_equal(got[special], true[special])  # NaN equal NaN here; -0 == +0 is checked below
    assert np.all(np.signbit(got[special & ~np.isnan(true)]) == np.signbit(true[special & ~np.isnan(true)]))
    finite = ~special
    overflow_allowed = finite & (np.abs(true) * (1 + b) > max_finite)
    assert np.all(np.isfinite(got[finite & ~overflow_allowed])), "Inf where the bound allows no overflow"
    err = np.abs(got - true)
    normal = finite & ~overflow_allowed & (np.abs(true) >= tiny)
    worst = np.max(err[normal] / np.abs(true[normal]) / b[normal])
    assert worst <= 1, f"{name} in {fmt.name}: relative error {worst:.3f} x the bound"
    sub = finite & (np.abs(true) < tiny)
    assert np.all(err[sub] <= b[sub] * np.abs(true[sub]) + 2.0 ** (fmt.emin - fmt.man_bits - 1))
    return worst


@pytest.mark.parametrize("fmt", ["bf16", "fp16", "fp32"])
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_each_function_is_within_its_derived_bound(name, fmt):
    check_against_float64(name, fmt)


@pytest.mark.parametrize("seed_bits", [3, 5, 10])
def test_the_bounds_hold_for_other_seed_tables(seed_bits):
    for name in ("reciprocal", "rsqrt"):
        func, exact, _ = FUNCS[name]
        fmt = get("fp32")
        a = fp32_inputs(20_000, seed=seed_bits)
        x = decode(a, fmt)
        ok = np.isfinite(x) & (x > 2.0 ** -100) & (x < 2.0 ** 100)
        got = decode(func(a[ok], fmt, seed_bits=seed_bits), fmt)
        rel = np.abs(got - exact(x[ok])) / exact(x[ok])
        bound = {"reciprocal": F.reciprocal_bound, "rsqrt": F.rsqrt_bound}[name](fmt, seed_bits=seed_bits)
        assert np.max(rel) <= bound


def test_the_default_newton_steps_reach_the_format_and_one_step_fewer_does_not():
    fmt = get("fp32")
    u = 2.0 ** -24
    for name, bound, iters in (("reciprocal", F.reciprocal_bound, F.reciprocal_steps),
                               ("rsqrt", F.rsqrt_bound, F.rsqrt_steps)):
        assert bound(fmt) < 2.5 * u
        steps = iters(fmt, 7)
        func, exact, _ = FUNCS[name]
        a = encode(np.geomspace(1.0, 4.0, 4001), fmt)
        x = decode(a, fmt)
        short = decode(func(a, fmt, iterations=steps - 1), fmt)
        assert np.max(np.abs(short - exact(x)) / exact(x)) > bound(fmt)


@pytest.mark.parametrize("name,torch_fn", [("reciprocal", torch.reciprocal), ("rsqrt", torch.rsqrt),
                                           ("exp", torch.exp)])
def test_fp32_agrees_with_pytorch_within_both_errors(name, torch_fn):
    """PyTorch's fp32 functions are within one ulp of exact (its documented accuracy); ours within
    our bound: the two may differ by the sum, never more."""
    fmt = get("fp32")
    func, exact, bound = FUNCS[name]
    a = fp32_inputs(50_000, seed=1)
    x = decode(a, fmt)
    ours = decode(func(a, fmt), fmt)
    theirs = torch_fn(torch.from_numpy(a.view(np.float32).copy())).numpy().astype(np.float64)
    with np.errstate(all="ignore"):
        true = exact(x)
    ok = np.isfinite(true) & (np.abs(true) >= 2.0 ** -126) & (np.abs(true) <= 1e38)
    tol = (np.broadcast_to(bound(fmt, x), x.shape)[ok] + 2.0 ** -23) * np.abs(true[ok])
    assert np.all(np.abs(ours[ok] - theirs[ok]) <= tol)
    same = np.mean(ours[ok] == theirs[ok])
    assert same > 0.5, f"only {same:.1%} of the results equal PyTorch's bit for bit"


def test_softmax_range_inputs_keep_full_precision_in_fp32():
    """exp's bound grows with |t|; on softmax's inputs (d <= 0, |d| < 20) fp32 keeps 17 bits or more,
    on |d| < 1 21 bits or more (fp32 has 24)."""
    assert np.max(F.exp_bound("fp32", np.array([20 / np.log(2)]))) < 2.0 ** -17
    assert np.max(F.exp_bound("fp32", np.array([1 / np.log(2)]))) < 2.0 ** -21


@pytest.mark.parametrize("fmt", ["e4m3", "e2m1", "e8m0"])
def test_formats_without_ieee_specials_are_refused_with_a_sentence(fmt):
    with pytest.raises(ValueError, match=r"cannot carry the function units: they need IEEE specials .* use fp32, "
                                         r"bf16, fp16 or an e8mX format\."):
        F.reciprocal(np.zeros(1, np.uint8), fmt)


@pytest.mark.parametrize("bad", [0, 13, 2.5, True])
def test_a_seed_table_size_outside_the_range_is_refused(bad):
    with pytest.raises(ValueError, match=rf"seed_bits={bad!r} is outside 1 to 12"):
        F.rsqrt(np.zeros(1, np.uint32), "fp32", seed_bits=bad)
