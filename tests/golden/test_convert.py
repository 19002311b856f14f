"""golden.convert against ml_dtypes and torch casts, and against a value-table reference built from
ml_dtypes' decoded values (for truncate, saturate, flush, stochastic and E8M0 ties), with the known
deviations of ml_dtypes from the E8M0 rounding recorded as data."""

from collections.abc import Callable
from dataclasses import dataclass

import ml_dtypes
import numpy as np
import pytest
import torch

from lutforge.golden.convert import convert, decode, encode
from lutforge.golden.formats import get

ML = {"bf16": ml_dtypes.bfloat16, "fp16": np.float16, "e4m3": ml_dtypes.float8_e4m3fn,
      "e5m2": ml_dtypes.float8_e5m2, "e3m2": ml_dtypes.float6_e3m2fn, "e2m3": ml_dtypes.float6_e2m3fn,
      "e2m1": ml_dtypes.float4_e2m1fn, "e8m0": ml_dtypes.float8_e8m0fnu}
TORCH = {"bf16": torch.bfloat16, "fp16": torch.float16, "e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}


def all_codes(F):
    return np.arange(1 << F.width, dtype=F.dtype)


def ml_decode(name, codes):
    with np.errstate(invalid="ignore"):  # signalling NaNs
        return codes.astype(np.uint8 if get(name).width <= 8 else np.uint16).view(ML[name]).astype(np.float64)


def ml_encode(name, x32):
    F = get(name)
    with np.errstate(invalid="ignore", over="ignore"):
        raw = x32.astype(ML[name]).view(np.uint8 if F.width <= 8 else np.uint16)
    return (raw & ((1 << F.width) - 1)).astype(F.dtype)


def same_value(a, b):
    return (np.isnan(a) & np.isnan(b)) | ((a == b) & (np.signbit(a) == np.signbit(b)))


def assert_codes(F, got, want, x):
    gn, wn = F.is_nan(got), F.is_nan(want)
    bad = (gn != wn) | (~gn & (got != want))
    if bad.any():
        i = np.flatnonzero(bad)[:8]
        pytest.fail(f"{bad.sum()} mismatches on {F.name}: inputs {x[i]!r} got "
                    f"{[hex(v) for v in got[i]]} want {[hex(v) for v in want[i]]}")


@pytest.mark.parametrize("name", list(ML))
def test_decode_every_encoding_matches_ml_dtypes(name):
    F = get(name)
    codes = all_codes(F)
    assert same_value(decode(codes, F), ml_decode(name, codes)).all()


@pytest.mark.parametrize("name", list(TORCH))
def test_decode_every_encoding_matches_torch(name):
    F = get(name)
    codes = all_codes(F)
    t = torch.from_numpy(codes.astype(np.int16 if F.width == 16 else np.uint8).view(
        np.int16 if F.width == 16 else np.uint8)).view(TORCH[name]).to(torch.float64).numpy()
    assert same_value(decode(codes, F), t).all()


def float32_inputs(name, n=1_000_000, seed=0):
    """Uniform bit patterns, values spread over the format's range, and every midpoint and
    near-midpoint between consecutive encodings (the ties), plus specials."""
    rng = np.random.default_rng(seed)
    F = get(name)
    bits = rng.integers(0, 2**32, n // 2, dtype=np.uint64).astype(np.uint32).view(np.float32)
    lo, hi = (-30, 20) if F.exp_bits <= 5 else (-140, 128)
    with np.errstate(over="ignore"):
        spread = (rng.standard_normal(n // 2) * 2.0 ** rng.integers(lo, hi, n // 2)).astype(np.float32)
    v = np.unique(np.abs(decode(all_codes(F), F)))
    v = v[np.isfinite(v)]
    mids = ((v[1:] + v[:-1]) / 2).astype(np.float32)
    top = np.float32(v[-1] + (v[-1] - v[-2]) / 2)
    edges = np.concatenate([mids, np.nextafter(mids, np.float32(0)), np.nextafter(mids, np.float32(np.inf)),
                            v.astype(np.float32), [top, np.nextafter(top, np.float32(0)),
                                                  np.nextafter(top, np.float32(np.inf)), np.inf, np.nan,
                                                  np.float32(1e-45), np.float32(1.2e-38), 0.0]])
    edges = np.concatenate([edges, -edges]).astype(np.float32)
    with np.errstate(over="ignore"):
        x = np.concatenate([bits, spread, edges])
    return x


# OCP MX v1.0 leaves the rounding of E8M0 scales to the implementation; golden.convert rounds to
# nearest, ties to the even field, as for every other format. ml_dtypes departs from that on the
# classes of float32 inputs below. Each entry holds from its version up to the next entry's and is
# checked against the installed ml_dtypes by test_ml_dtypes_e8m0_deviations_are_as_recorded, so a
# release that changes them fails there with the classes to record.
@dataclass(frozen=True)
class Deviation:
    what: str
    select: Callable[[np.ndarray], np.ndarray]  # |x| (float64) → mask of the inputs in the class


def _ties_below_even_field(ax):
    """1.5·2^k between fields k+127 (even, so the nearest-even choice) and k+128: odd k."""
    mantissa, exponent = np.frexp(ax)  # 1.5·2^k = 0.75·2^(k+1)
    return (mantissa == 0.75) & (exponent % 2 == 0) & (ax > 2.0**-127) & (ax < 2.0**127)


E8M0_TIES_UP = Deviation("ties 1.5·2^k with odd k round up to the odd field k+128",
                         _ties_below_even_field)
E8M0_SUBNORMALS_UP = Deviation("float32 subnormals in (2^-127, 1.5·2^-127) round up to field 1",
                               lambda ax: (ax > 2.0**-127) & (ax < 1.5 * 2.0**-127))
ML_DTYPES_E8M0_DEVIATIONS = {
    (0, 5): (E8M0_TIES_UP, E8M0_SUBNORMALS_UP),  # measured on 0.5.4 and 0.6.0
    (0, 7): (E8M0_TIES_UP,),                     # measured on 0.7.0
}


def ml_dtypes_e8m0_deviations():
    """The recorded deviations of the installed ml_dtypes: the entry of the newest version not
    after it."""
    installed = tuple(int(p) for p in ml_dtypes.__version__.split(".")[:2])
    known = [v for v in ML_DTYPES_E8M0_DEVIATIONS if v <= installed]
    if not known:
        pytest.fail(f"ml_dtypes {ml_dtypes.__version__} is older than every entry of "
                    f"ML_DTYPES_E8M0_DEVIATIONS; install ml_dtypes>=0.5 (pyproject.toml).")
    return ML_DTYPES_E8M0_DEVIATIONS[max(known)]


def outside_deviations(x):
    with np.errstate(invalid="ignore"):
        ax = np.abs(x.astype(np.float64))
    keep = np.ones(x.shape, bool)
    for deviation in ml_dtypes_e8m0_deviations():
        keep &= ~deviation.select(ax)
    return x[keep]


# fp6/fp4 have no NaN (ml_dtypes turns NaN into -0).
@pytest.mark.parametrize("name", list(ML))
def test_encode_float32_matches_ml_dtypes(name):
    F = get(name)
    x = float32_inputs(name)
    if F.specials == "none":
        x = x[~np.isnan(x)]
    if name == "e8m0":
        x = outside_deviations(x)
    overflow = "saturate" if F.specials == "none" else "inf"
    with np.errstate(over="ignore", invalid="ignore"):
        want = ml_encode(name, x)
    assert_codes(F, encode(x, F, overflow=overflow), want, x)


@pytest.mark.parametrize("name,overflow", [("bf16", "inf"), ("fp16", "inf"), ("e5m2", "inf"), ("e4m3", "saturate")])
def test_encode_float32_matches_torch(name, overflow):
    """torch >= 2.12 saturates e4m3fn casts (Inf included), not e5m2; bf16/fp16 overflow to Inf."""
    F = get(name)
    x = float32_inputs(name, seed=1)
    raw = torch.from_numpy(x).to(TORCH[name]).view(torch.int16 if F.width == 16 else torch.uint8).numpy()
    want = raw.view(np.uint16 if F.width == 16 else np.uint8).astype(F.dtype)
    assert_codes(F, encode(x, F, overflow=overflow), want, x)


def test_e4m3_overflow_points():
    x = np.array([448, 464, np.nextafter(np.float32(464), np.float32(0)), np.nextafter(np.float32(464), np.float32(1e9)),
                  1e6, -464, -465], np.float32)
    assert list(encode(x, "e4m3")) == [0x7E, 0x7E, 0x7E, 0x7F, 0x7F, 0xFE, 0x7F]
    assert list(encode(x, "e4m3", overflow="saturate")) == [0x7E, 0x7E, 0x7E, 0x7E, 0x7E, 0xFE, 0xFE]
    assert list(encode(np.array([57344, 61439.99, 61440], np.float64), "e5m2")) == [0x7B, 0x7B, 0x7C]


def test_fp32_to_bf16_is_rne_on_upper_half():
    rng = np.random.default_rng(2)
    u = rng.integers(0, 2**32, 1_000_000, dtype=np.uint64).astype(np.uint32)
    u = u[~get("fp32").is_nan(u)]
    ref = ((u.astype(np.uint64) + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    # RNE carries into the exponent and up to Inf (0x7F80) exactly like the integer add.
    assert np.array_equal(convert(u, "fp32", "bf16"), ref)


class Table:
    """Plain reference: the sorted finite magnitudes of a format (decoded by ml_dtypes) and a
    search for the neighbours of each input."""

    def __init__(self, name):
        F = self.F = get(name)
        codes = all_codes(F)
        vals = ml_decode(name, codes)
        keep = np.isfinite(vals) & ~np.signbit(vals)
        order = np.argsort(vals[keep], kind="stable")
        self.vals, self.codes = vals[keep][order], codes[keep][order]

    def neighbours(self, ax):
        i = np.clip(np.searchsorted(self.vals, ax, side="right") - 1, 0, len(self.vals) - 1)
        j = np.minimum(i + 1, len(self.vals) - 1)
        return i, j

    def round(self, x, rounding, overflow, subnormals="keep"):
        F = self.F
        x = np.asarray(x, np.float64)
        ax = np.abs(x)
        i, j = self.neighbours(ax)
        lo, hi = self.vals[i], self.vals[j]
        if rounding == "truncate":
            k = i
        else:
            d_lo, d_hi = ax - lo, hi - ax
            tie_even = (self.codes[i] & 1) == 0
            k = np.where(d_lo < d_hi, i, np.where(d_lo > d_hi, j, np.where(tie_even, i, j)))
        k = np.where(ax < self.vals[0], 0, k)
        mag = self.codes[k].astype(np.int64)
        # The step to the value the format would have next: one unit in the last place of the
        # largest value (2^127 itself for E8M0, which has no mantissa).
        vmax = self.vals[-1]
        step = 2.0 ** (np.frexp(vmax)[1] - 1 - F.man_bits)
        # Past the largest value: past half a step (nearest) overflows; truncation clamps.
        ovf = (ax > vmax + step / 2) | ((ax == vmax + step / 2) & (self.codes[-1] & 1 == 1)) if rounding == "rne" else ax > np.inf
        if overflow != "saturate" and rounding == "rne":
            mag = np.where(ovf, F.inf if F.has_inf else F.nan, mag)
        if subnormals == "flush" and F.has_zero:
            mag = np.where(mag < (1 << F.man_bits), 0, mag)
        sign = np.signbit(x) & F.signed
        return (mag | np.where(sign, F.sign_mask, 0)).astype(F.dtype)


SMALL_AND_16 = ["bf16", "fp16", "e4m3", "e5m2", "e3m2", "e2m3", "e2m1"]


# "none" formats refuse overflow='inf' (see test_error_messages).
@pytest.mark.parametrize("rounding", ["rne", "truncate"])
@pytest.mark.parametrize("subnormals", ["keep", "flush"])
@pytest.mark.parametrize("name,overflow", [(n, o) for n in SMALL_AND_16 for o in ("inf", "saturate")
                                           if not (o == "inf" and get(n).specials == "none")])
def test_policies_against_table_reference(name, rounding, overflow, subnormals):
    F = get(name)
    x = float32_inputs(name, n=200_000, seed=3)
    x = x[np.isfinite(x)].astype(np.float64)
    want = Table(name).round(x, rounding, overflow, subnormals)
    got = encode(x, F, rounding=rounding, overflow=overflow, subnormals=subnormals)
    assert_codes(F, got, want, x)


def e8m0_probes():
    """Positive float32 inputs: the usual probes, every tie, and every 1024th float32 subnormal."""
    x = float32_inputs("e8m0", n=200_000, seed=6)
    ties = (1.5 * 2.0 ** np.arange(-127, 127)).astype(np.float32)
    subnormals = np.arange(1, 1 << 23, 1 << 10, dtype=np.uint32).view(np.float32)
    x = np.concatenate([x, ties, subnormals])
    return x[np.isfinite(x) & (x > 0)]


def test_e8m0_against_table_reference_ties_to_even_field():
    F = get("e8m0")
    # The table's values are the specification's: field e is 2^(e-127), field 255 is NaN.
    fields = np.arange(255, dtype=np.uint8)
    assert np.array_equal(ml_decode("e8m0", fields), 2.0 ** (fields.astype(np.float64) - 127))
    assert np.isnan(ml_decode("e8m0", np.array([255], np.uint8))).all()
    t = Table("e8m0")
    rng = np.random.default_rng(4)
    x = np.concatenate([2.0 ** rng.uniform(-127, 128, 200_000), 1.5 * 2.0 ** np.arange(-127, 127),
                        2.0 ** np.arange(-127, 128), [2.0**-140, 1e-300],
                        e8m0_probes().astype(np.float64)])
    # Below 2^-127 there is no zero to round to: everything goes to field 0.
    assert_codes(F, encode(x, F, overflow="saturate"), t.round(x, "rne", "saturate"), x)
    assert list(encode(np.array([1.5, 3.0, 6.0, 0.0, -1.0]), F)) == [128, 128, 130, 255, 255]
    assert int(encode(np.float32(8e-39), F)) == 0


def test_ml_dtypes_e8m0_deviations_are_as_recorded():
    """ml_dtypes differs from the specification's rounding exactly on the recorded classes."""
    x = e8m0_probes()
    with np.errstate(over="ignore", invalid="ignore"):
        got = ml_encode("e8m0", x)
    want = Table("e8m0").round(x, "rne", "inf")
    ax = x.astype(np.float64)
    differs = got != want
    recorded = np.zeros(x.shape, bool)
    for deviation in ml_dtypes_e8m0_deviations():
        in_class = deviation.select(ax)
        assert in_class.any(), f"no probe input falls in the class {deviation.what!r}"
        assert differs[in_class].all(), (
            f"ml_dtypes {ml_dtypes.__version__} now follows the specification on "
            f"{x[in_class & ~differs][:4]!r} ({deviation.what}); record that in "
            f"ML_DTYPES_E8M0_DEVIATIONS.")
        recorded |= in_class
    assert not (differs & ~recorded).any(), (
        f"ml_dtypes {ml_dtypes.__version__} departs from the specification on "
        f"{x[differs & ~recorded][:4]!r} (fields {got[differs & ~recorded][:4]!r}, specification "
        f"{want[differs & ~recorded][:4]!r}); record that class in ML_DTYPES_E8M0_DEVIATIONS.")


def test_convert_between_formats_matches_ml_dtypes():
    """Every encoding of every small format into every other: the source value is exact in
    float32, so ml_dtypes' float32 cast is the single rounding to compare against."""
    for src in ["bf16", "fp16", "e4m3", "e5m2", "e3m2", "e2m3", "e2m1", "e8m0"]:
        S = get(src)
        codes = all_codes(S)
        with np.errstate(invalid="ignore"):
            v32 = ml_decode(src, codes).astype(np.float32)
        for dst in ["bf16", "fp16", "e4m3", "e5m2", "e3m2", "e2m3", "e2m1"]:
            D = get(dst)
            keep = ~np.isnan(v32) if D.specials == "none" else np.ones(v32.shape, bool)
            overflow = "saturate" if D.specials == "none" else "inf"
            with np.errstate(over="ignore"):
                want = ml_encode(dst, v32[keep])
            assert_codes(D, convert(codes[keep], S, D, overflow=overflow), want, v32[keep])


def test_flush_inputs():
    sub = np.array([0x0001, 0x83FF, 0x0400], np.uint16)  # fp16: tiny, negative subnormal, min normal
    assert list(convert(sub, "fp16", "fp32", subnormals="flush")) == [0, 0x80000000, 0x38800000]
    assert list(convert(sub, "fp16", "fp32")) == [0x33800000, 0xB87FC000, 0x38800000]


def test_stochastic_rounding_is_seeded_unbiased_and_brackets():
    F = get("e4m3")
    t = Table("e4m3")
    rng = np.random.default_rng(5)
    x = rng.uniform(-400, 400, 200_000)
    a = encode(x, F, rounding="stochastic", rng=np.random.default_rng(9))
    b = encode(x, F, rounding="stochastic", rng=9)
    assert np.array_equal(a, b)
    down, up = t.round(x, "truncate", "saturate"), t.neighbours(np.abs(x))[1]
    up = (t.codes[up] | np.where(x < 0, F.sign_mask, 0)).astype(F.dtype)
    exact = decode(down, F) == x
    assert np.all((a == down) | ((a == up) & ~exact))
    # Unbiased: the mean error is far below the mean step (~|x|/16) and within 5 sigma of zero.
    err = decode(a, F) - x
    assert abs(err.mean()) < 5 * err.std() / np.sqrt(err.size)
    x = np.full(100_000, 1.0 + 2**-9)
    frac_up = np.mean(encode(x, "bf16", rounding="stochastic", rng=1) == 0x3F81)
    assert abs(frac_up - 0.25) < 0.01


def test_error_messages():
    with pytest.raises(ValueError, match=r"Format 'e2m1' has no Inf or NaN encoding, so overflow='inf' "
                                         r"cannot be honoured; saturate is the only option: pass overflow='saturate'\."):
        encode(np.array([1.0]), "e2m1", overflow="inf")
    with pytest.raises(ValueError, match=r"rounding='stochastic' needs a random source; pass "
                                         r"rng=np.random.default_rng\(seed\) or an int seed\."):
        encode(np.array([1.0]), "e4m3", rounding="stochastic")
    with pytest.raises(ValueError, match=r"rounding='up' is not supported here; use one of 'rne', 'truncate', 'stochastic'\."):
        encode(np.array([1.0]), "e4m3", rounding="up")
    with pytest.raises(ValueError, match=r"subnormals='ftz' is not supported; use 'keep' or 'flush'\."):
        encode(np.array([1.0]), "e4m3", subnormals="ftz")
    with pytest.raises(ValueError, match=r"overflow='clip' is not supported; use 'inf' or 'saturate'\."):
        encode(np.array([1.0]), "e4m3", overflow="clip")
    with pytest.raises(ValueError, match=r"Format 'e2m3' has no NaN encoding, and 1 input\(s\) are NaN"):
        encode(np.array([1.0, np.nan]), "e2m3")
    with pytest.raises(TypeError, match=r"encode takes a float16/float32/float64 array, got dtype int64"):
        encode(np.array([1]), "e4m3")
    with pytest.raises(ValueError, match=r"Unknown format 'fp8'; use one of fp32, fp16, bf16"):
        get("fp8")
