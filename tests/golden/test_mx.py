"""golden.mx against torchao's MX (to_mx) and NVFP4 (nvfp4_quantize) quantizers bit for bit, and
against plain-Python references for the INT element types, the Hadamard rotation and the dot product."""

import logging

import numpy as np
import pytest

from lutforge.golden import mx
from lutforge.golden.convert import decode, encode

torch = pytest.importorskip("torch")
# torchao logs failed loads of CUDA kernels and torch's pytree registration notes on import; they
# are log records, not warnings, and do not affect the CPU reference quantizers used here.
logging.getLogger("torch").setLevel(logging.ERROR)
mx_tensor = pytest.importorskip("torchao.prototype.mx_formats.mx_tensor")
nvfp4_tensor = pytest.importorskip("torchao.prototype.mx_formats.nvfp4_tensor")
constants = pytest.importorskip("torchao.prototype.mx_formats.constants")

TORCHAO_MX = {
    "mxfp8_e4m3": torch.float8_e4m3fn,
    "mxfp8_e5m2": torch.float8_e5m2,
    "mxfp6_e3m2": constants.DTYPE_FP6_E3M2,
    "mxfp6_e2m3": constants.DTYPE_FP6_E2M3,
    "mxfp4": torch.float4_e2m1fn_x2,
}


def blocks(bf, n_blocks, seed):
    """Heavy-tailed blocks over a wide range of scales, blocks of exact element-grid ties (one
    element pins the scale), blocks that must saturate, and zero / negative-zero blocks."""
    rng = np.random.default_rng(seed)
    B = bf.block
    x = rng.standard_t(3, (n_blocks, B)) * 2.0 ** rng.integers(-40, 40, (n_blocks, 1))
    kind = rng.integers(0, 10, n_blocks)
    k = rng.integers(-60, 60, n_blocks).astype(np.float64)
    if bf.int_bits:
        grid = np.arange(-bf.int_max, bf.int_max + 1) / 2.0 ** bf.int_frac_bits
    else:
        g = decode(np.arange(1 << bf.elem_fmt.width), bf.elem_fmt)
        grid = np.unique(g[np.isfinite(g)])
    mids = (grid[1:] + grid[:-1]) / 2
    ties = rng.choice(mids, (n_blocks, B)) * 2.0 ** k[:, None]
    ties[:, 0] = 2.0 ** (k + bf.elem_emax)
    x = np.where((kind < 3)[:, None], ties, x)
    sat = (kind == 3)
    x[sat, 0] = (2 - 2.0**-20) * 2.0 ** (k[sat] + bf.elem_emax)
    x[kind == 4] = 0.0
    x[kind == 5] = -0.0
    return x.astype(np.float32)


def torchao_codes(d, shape, fp4):
    d = d.view(torch.uint8).numpy()
    if fp4:
        d = np.stack([d & 15, d >> 4], -1)
    return d.reshape(shape)


@pytest.mark.parametrize("name", list(TORCHAO_MX))
def test_mx_matches_torchao_to_mx(name):
    bf = mx.get_block_format(name)
    x = blocks(bf, 100_000, seed=len(name))
    q = mx.quantize(x, bf)
    s, d = mx_tensor.to_mx(torch.from_numpy(x), TORCHAO_MX[name], 32)
    assert np.array_equal(q.scales, s.view(torch.uint8).numpy())
    assert np.array_equal(q.elements, torchao_codes(d, x.shape, name == "mxfp4"))
    assert q.tensor_scale is None


def test_torchao_mx_scale_field_zero_divides_by_2_pow_minus_126():
    """Where OCP and torchao part: scale field 0 is 2^-127, but torchao clamps the float scale to
    2^-126 before dividing, so its elements are half of what the scale says. Ours decode exactly."""
    x = np.zeros((1, 32), np.float32)
    x[0, 0] = 2.0**-120
    q = mx.quantize(x, "mxfp8_e4m3")
    s, d = mx_tensor.to_mx(torch.from_numpy(x), torch.float8_e4m3fn, 32)
    assert int(q.scales[0, 0]) == int(s.view(torch.uint8)[0, 0]) == 0
    assert int(q.elements[0, 0]) == 0x70 and int(d.view(torch.uint8)[0, 0]) == 0x68
    assert mx.dequantize(q, "mxfp8_e4m3")[0, 0] == 2.0**-120


@pytest.mark.parametrize("tensor_scale", [None, "auto"])
def test_nvfp4_matches_torchao(tensor_scale):
    bf = mx.get_block_format("nvfp4")
    x = blocks(bf, 100_000, seed=1).reshape(-1, 64)
    # One tensor scale across 2^80 of block ranges would clamp most blocks; keep a realistic spread.
    x = x / 2.0 ** np.round(np.log2(np.max(np.abs(x), axis=1, keepdims=True) + 1e-30) / 4) if tensor_scale else x
    x = x.astype(np.float32)
    q = mx.quantize(x, bf, tensor_scale=tensor_scale)
    pts = None
    if tensor_scale:
        pts = nvfp4_tensor.per_tensor_amax_to_scale(torch.tensor(np.abs(x).max()))
        assert np.float32(pts.item()) == q.tensor_scale
    s, d = nvfp4_tensor.nvfp4_quantize(torch.from_numpy(x), 16, pts)
    assert np.array_equal(q.scales, s.view(torch.uint8).numpy())
    assert np.array_equal(q.elements, torchao_codes(d, x.shape, True))


def reference_int_block(x, bits, block, nv):
    """Plain Python, one value at a time: OCP MXINT (scale 2^(floor(log2 amax)), q·2^-(k-2)) or NV
    INT (torchao's float32 NVFP4 steps with integer elements)."""
    qmax = 2 ** (bits - 1) - 1
    codes, scales = [], []
    f32 = np.float32
    t_amax = float(np.max(np.abs(x)))
    ts = f32(f32(t_amax) / f32(448 * qmax)) if nv else None
    for blk in x.reshape(-1, block):
        amax = max(abs(float(v)) for v in blk)
        if nv:
            s = encode(np.float32(min(max(f32(f32(amax) / f32(qmax)) / ts, f32(2.0**-6)), f32(448))), "e4m3")
            r = (f32(1) / ts) / f32(decode(s, "e4m3"))
            vals = [min(max(f32(v) * r, -qmax), qmax) for v in blk]
        else:
            # floor(log2(amax)) from the printed binary exponent, e.g. '0x1.8p+3' -> 3.
            e = max(-127, int(amax.hex().split("p")[1])) if amax else -127
            s = e + 127
            vals = [float(v) / 2.0**e * 2 ** (bits - 2) for v in blk]
        scales.append(int(s))
        for v in vals:
            q = int(round(float(v)))  # Python's round is half-to-even
            codes.append(max(-qmax, min(qmax, q)) & (2**bits - 1))
    return np.array(codes, np.uint8).reshape(x.shape), np.array(scales, np.uint8), ts


@pytest.mark.parametrize("name", ["mxint8", "mxint4", "nvint4"])
def test_int_blocks_match_plain_python_reference(name):
    bf = mx.get_block_format(name)
    x = blocks(bf, 3_000, seed=4)
    x = x[: len(x) // 4 * 4].reshape(-1, 4 * bf.block)
    if bf.scale == "e4m3":
        x = x / 2.0 ** np.round(np.log2(np.max(np.abs(x), axis=1, keepdims=True) + 1e-30) / 4)
        x = x.astype(np.float32)
    q = mx.quantize(x, bf)
    codes, scales, ts = reference_int_block(x, bf.int_bits, bf.block, bf.scale == "e4m3")
    assert np.array_equal(q.elements, codes)
    assert np.array_equal(q.scales.ravel(), scales)
    assert q.tensor_scale == ts


@pytest.mark.parametrize("name", list(mx.BLOCK_FORMATS))
def test_dequantize_error_is_bounded_by_the_top_grid_step(name):
    """Tolerance from the format: each element is off by at most half its own grid step, which is
    at most the step between the two largest element values times the block's scale; saturation
    (scale floor in MX, e4m3 scale rounding in NV) adds less than one more such step."""
    bf = mx.get_block_format(name)
    x = (np.random.default_rng(6).standard_normal((512, 64)) * 3).astype(np.float32)
    q = mx.quantize(x, bf)
    err = np.abs(mx.dequantize(q, bf) - x).reshape(-1, bf.block)
    scale = decode(q.scales, bf.scale).ravel() * (q.tensor_scale if q.tensor_scale is not None else 1.0)
    if bf.int_bits:
        step = 2.0 ** -bf.int_frac_bits
    else:
        step = 2.0 ** (bf.elem_emax - bf.elem_fmt.man_bits)
    bound = 2 * step * scale
    assert np.all(err.max(axis=1) <= bound)
    assert np.mean(err.max(axis=1) <= bound / 4) > 0.5


def test_int8_beats_fp8_and_fp4_beats_int4_on_gaussian_blocks():
    """The seeds' INT-vs-FP observation on N(0,1) data, measured by relative RMS error."""
    x = np.random.default_rng(8).standard_normal((1024, 256)).astype(np.float32)

    def rel_rms(name, h=None):
        q = mx.quantize(x, name, hadamard_size=h)
        return np.sqrt(np.mean((mx.dequantize(q, name, hadamard_size=h) - x) ** 2) / np.mean(x.astype(np.float64) ** 2))

    assert rel_rms("mxint8") < rel_rms("mxfp8_e4m3")
    assert rel_rms("mxfp4") < rel_rms("mxint4")
    # With outliers, a Hadamard rotation spreads them and lowers the 4-bit error.
    x[:, ::64] *= 30
    assert rel_rms("nvint4", 16) < rel_rms("nvint4")


def test_hadamard_matches_sylvester_matrix_and_round_trips():
    H = np.array([[1.0]])
    for _ in range(5):
        H = np.kron(H, np.array([[1.0, 1.0], [1.0, -1.0]]))
    x = np.random.default_rng(9).standard_normal((7, 64))
    want = (x.reshape(7, 2, 32) @ H.T / np.sqrt(32)).reshape(7, 64)
    assert np.allclose(mx.hadamard(x, 32), want, rtol=0, atol=1e-12)
    assert np.allclose(mx.hadamard(mx.hadamard(x, 32), 32), x, rtol=0, atol=1e-12)
    q = mx.quantize(x.astype(np.float32), "mxint8", hadamard_size=32)
    assert np.allclose(mx.dequantize(q, "mxint8", hadamard_size=32), x, atol=0.05)


def reference_dot(va, vb, sa, sb, ta, tb, block):
    """The documented accumulator with NumPy float32 scalars (IEEE RNE), independent of golden.fp."""
    f32 = np.float32

    def tree(vals):
        vals = list(vals)
        while len(vals) > 1:
            if len(vals) % 2:
                vals.append(f32(0))
            vals = [f32(vals[i] + vals[i + 1]) for i in range(0, len(vals), 2)]
        return vals[0]

    sums = []
    for i in range(len(va) // block):
        p = [f32(f32(a) * f32(b)) for a, b in zip(va[i * block:(i + 1) * block], vb[i * block:(i + 1) * block])]
        sums.append(f32(f32(tree(p) * f32(sa[i])) * f32(sb[i])))
    total = tree(sums)
    for t in (ta, tb):
        if t is not None:
            total = f32(total * t)
    return total


@pytest.mark.parametrize("name", list(mx.BLOCK_FORMATS))
def test_dot_matches_float32_reference(name):
    bf = mx.get_block_format(name)
    rng = np.random.default_rng(10)
    n = 12 * bf.block
    xa = (rng.standard_normal((20, n)) * 2.0 ** rng.integers(-20, 20, (20, 1))).astype(np.float32)
    xb = (rng.standard_normal((20, n)) * 2.0 ** rng.integers(-20, 20, (20, 1))).astype(np.float32)
    qa, qb = mx.quantize(xa, bf), mx.quantize(xb, bf)
    got = mx.dot(qa, qb, bf)
    assert got.shape == (20,) and got.dtype == np.float32
    unit = 127 if bf.scale == "e8m0" else 0x38  # scale encodings of 1.0
    for r in range(20):
        def elems(q):
            return mx.dequantize(mx.Blocks(q.elements[r], np.full_like(q.scales[r], unit), None), bf).astype(np.float32)

        def scales(q):
            return decode(q.scales[r], bf.scale).astype(np.float32)

        want = reference_dot(elems(qa), elems(qb), scales(qa), scales(qb), qa.tensor_scale, qb.tensor_scale, bf.block)
        assert got[r].view(np.uint32) == np.float32(want).view(np.uint32), (name, r)
    prods = mx.dequantize(qa, bf) * mx.dequantize(qb, bf)
    # fp32 accumulation of n terms: error below n·2^-24 of the sum of magnitudes.
    assert np.all(np.abs(got - prods.sum(-1)) <= n * 2.0**-24 * np.abs(prods).sum(-1))


def test_error_messages():
    with pytest.raises(ValueError, match=r"Unknown block format 'mxfp5'; use one of mxfp8_e4m3, "):
        mx.quantize(np.zeros(32, np.float32), "mxfp5")
    with pytest.raises(ValueError, match=r"The last axis of the tensor has 40 values, not a multiple of "
                                         r"mxfp4's block size 32; pad it with zeros to a multiple of 32\."):
        mx.quantize(np.zeros(40, np.float32), "mxfp4")
    with pytest.raises(TypeError, match=r"quantize takes float16 or float32 values, got dtype float64; cast explicitly"):
        mx.quantize(np.zeros(32), "mxfp4")
    with pytest.raises(ValueError, match=r"Hadamard size 12 is not a power of two"):
        mx.quantize(np.zeros(32, np.float32), "mxfp4", hadamard_size=12)
    with pytest.raises(ValueError, match=r"nvfp4 cannot encode NaN or Inf inputs; remove or clip them"):
        mx.quantize(np.full(16, np.inf, np.float32), "nvfp4")
