"""Weight-only LUT layers (``kind: tmac``) through the one compile path: fit by method, quantize to
integer codebooks, lower onto the weight-only core (K cut into runs its table memory holds), write
and read the Program, run on the golden and the Verilator backends (bit for bit equal), the host's
arithmetic around them, the performance model against simulated cycles, and the training forward
pass against the hardware arithmetic."""

import numpy as np
import pytest
import torch

from lutforge.backends import get_backend
from lutforge.compiler.config import ConfigError, _method
from lutforge.compiler.layer_quant import TmacWeights, from_bytes, quantize_method, to_bytes
from lutforge.compiler.lower import lower
from lutforge.compiler.lut_methods import LayerMethod, cached_fit, parse_method, streamed_bits
from lutforge.compiler.perf import LayerShape, tmac_layer_cost
from lutforge.golden.mx import hadamard
from lutforge.program.artifact import ProgramError, decode_tmac_layer, read_program, write_program
from lutforge.program.core import GemvCoreParams
from lutforge.program.host import HostDriver

LANES = 4


def _layer(rng, n=24, k=52):
    w = rng.standard_normal((n, k)).astype(np.float32)
    x = rng.standard_normal((64, k)).astype(np.float32)
    return w, x


def _reference(x, q: TmacWeights, runs):
    """The hardware arithmetic written out from the integer layer with Python ints: per row and run
    (``runs``: (first position, positions)) an int8 scale, exact integer dot products with the
    selected codes, then the two scales in float64."""
    layer, v = q.layer, q.layer.v
    out = np.zeros((x.shape[0], layer.out_features))
    for t, row in enumerate(np.asarray(x, np.float64)):
        for p0, count in runs:
            part = row[p0 * v:(p0 + count) * v]
            peak = float(np.max(np.abs(part)))
            s_x = peak / 127.0 if peak > 0 else 1.0
            xq = [max(-127, min(127, int(np.rint(e / s_x)))) for e in part] + [0] * (count * v - len(part))
            for n in range(layer.out_features):
                g = n // layer.group_rows
                total = 0
                for p in range(count):
                    code = layer.codes[p0 + p, g, int(layer.widx[n, p0 + p])]
                    total += sum(xq[p * v + j] * int(code[j]) for j in range(v))
                out[t, n] += float(total) * float(layer.scales[g]) * s_x
    return out


@pytest.mark.parametrize("method", [
    {"kind": "tmac", "v": 2, "c_w": 16, "group_rows": 8, "fit": "gptq"},
    {"kind": "tmac", "v": 1, "c_w": 16, "fit": "kmeans", "cb_bits": 6},
    {"kind": "tmac", "v": 4, "c_w": 32, "group_rows": 12, "fit": "act", "hadamard": 4},
], ids=["v2-gptq", "v1-kmeans-cb6", "v4-act-H4"])
def test_a_tmac_layer_survives_the_program_and_runs_the_hardware_arithmetic(tmp_path, method):
    rng = np.random.default_rng(1)
    w, cal = _layer(rng)
    m = parse_method(method)
    q = quantize_method("l", w, cal, m)
    assert isinstance(q, TmacWeights)
    again = from_bytes(to_bytes(q))
    assert np.array_equal(again.layer.codes, q.layer.codes) and again.hadamard == q.hadamard
    # A table memory of 9 rows: 3 row blocks of 8 rows take 3 positions per run, so K is cut in runs.
    low = lower("l", q, LANES, 9 if q.layer.num_blocks == 3 else 1024)
    prog = read_program(write_program(tmp_path / "p", [low], config={}, source={}).path)
    back = prog.layers["l"]
    runs = decode_tmac_layer(back)
    assert np.array_equal(np.concatenate([sub.codes for _, sub in runs]), q.layer.codes)
    assert np.array_equal(np.concatenate([sub.widx for _, sub in runs], axis=1), q.layer.widx)

    x = rng.standard_normal((3, w.shape[1])).astype(np.float32)
    y = HostDriver(prog, get_backend("golden")).linear("l", x)
    xr = hadamard(x, m.hadamard) if m.hadamard else x
    want = _reference(xr, q, [(r.first_position, r.positions) for r in low.runs])
    # Both sum the same integers exactly; only the two float64 scale products may round apart.
    assert np.allclose(y, want, rtol=1e-14, atol=0)
    # ... and approximate the float layer: weights and activations both rounded, so the error is
    # well above float rounding but far below the output's scale.
    exact = x @ w.T
    assert np.sqrt(np.mean((y - exact) ** 2)) < 0.6 * np.sqrt(np.mean(exact ** 2))


def test_each_run_has_its_own_activation_scale(tmp_path):
    rng = np.random.default_rng(4)
    w, cal = _layer(rng, n=16, k=40)
    q = quantize_method("l", w, cal, LayerMethod(kind="tmac", v=2, c_w=16, group_rows=8))
    one, cut = lower("l", q, LANES, 1024), lower("l", q, LANES, 6)
    assert len(one.runs) == 1 and [r.positions for r in cut.runs] == [3] * 6 + [2]
    x = rng.standard_normal((2, 40)).astype(np.float32)
    x[:, 3] = 500.0  # an outlier feature: one run loses resolution, not all
    drivers = [HostDriver(write_program(tmp_path / str(i), [low], config={}, source={}), get_backend("golden"))
               for i, low in enumerate((one, cut))]
    assert drivers[0].quantize("l", x).scale.shape == (2, 1) and drivers[1].quantize("l", x).scale.shape == (2, 7)
    ys = [d.linear("l", x) for d in drivers]
    for y, low in zip(ys, (one, cut)):
        assert np.array_equal(y, _reference(x, q, [(r.first_position, r.positions) for r in low.runs]))
    # Against the layer's own float weights: only the run holding the outlier lost resolution.
    exact = x.astype(np.float64) @ np.concatenate([q.layer.codes[p, np.arange(16) // 8, q.layer.widx[:, p]]
                                                   for p in range(20)], axis=1).T.astype(np.float64)
    exact *= q.layer.scales[np.arange(16) // 8].astype(np.float64)
    assert np.abs(ys[1] - exact).max() < 0.5 * np.abs(ys[0] - exact).max()


def test_lowering_refuses_what_the_core_cannot_hold():
    rng = np.random.default_rng(5)
    w, cal = _layer(rng, n=24, k=8)
    q = quantize_method("l", w, cal, LayerMethod(kind="tmac", v=2, c_w=4, group_rows=4))
    with pytest.raises(ProgramError, match=r"^Layer l has 6 row blocks, but the weight-only core's table memory "
                                           r"holds 5 rows, fewer than one position's tables; use a larger "
                                           r"group_rows or build the cores with core.max_positions >= 6\.$"):
        lower("l", q, LANES, 5)
    q = quantize_method("l", w, cal, LayerMethod(kind="tmac", v=2, c_w=4, group_rows=6))
    with pytest.raises(ProgramError, match=r"^Layer l has row blocks of G=6 rows, not a whole number of 4-lane "
                                           r"tiles; quantize it with group_rows a multiple of 4 \(or 0\)\.$"):
        lower("l", q, LANES, 64)


def test_streamed_bits_of_a_tmac_layer():
    # 576 x 576, v 1, C_w 16, one block: 4 index bits per weight, 576 positions * 16 entries * 8 bits
    # of codebook and one fp32 scale.
    m = LayerMethod(kind="tmac", v=1, c_w=16)
    assert streamed_bits(m, 576, 576) == (576 * 576 * 4 + 576 * 16 * 8 + 32) / (576 * 576)
    m = LayerMethod(kind="tmac", v=2, c_w=16, group_rows=512, cb_bits=6)
    assert streamed_bits(m, 1536, 576) == (1536 * 288 * 4 + 288 * 3 * 16 * 2 * 6 + 3 * 32) / (1536 * 576)


def test_tmac_options_are_checked_by_name():
    with pytest.raises(ConfigError, match=r"^layers\.0\.mlp\.up\.c_a has no effect on kind 'tmac' \(a weight-only "
                                          r"LUT layer has no activation codebooks or table quantization\); remove "
                                          r"it, or use kind: lut\.$"):
        _method({"kind": "tmac", "c_a": 64}, "layers.0.mlp.up")
    with pytest.raises(ConfigError, match=r"^m\.cb_bits has no effect on kind 'lut' \(only weight-only LUT methods "
                                          r"read it\); remove it or use kind: tmac\.$"):
        _method({"kind": "lut", "cb_bits": 8}, "m")
    with pytest.raises(ConfigError, match=r"^m\.v = 3 is not allowed; use 1, 2, 4 or 8\.$"):
        _method({"kind": "tmac", "v": 3}, "m")


def test_the_training_forward_pass_is_the_hardware_arithmetic(tmp_path):
    from lutforge.compiler.trainable import TrainableTmac

    rng = np.random.default_rng(6)
    w, cal = _layer(rng, n=16, k=48)
    m = LayerMethod(kind="tmac", v=2, c_w=16, group_rows=8, hadamard=16, fit="gptq")
    fitted = cached_fit(w, cal, m)
    x = rng.standard_normal((5, 48)).astype(np.float32)
    x[:, 5] = 40.0  # an outlier in the first run: the runs' scales differ
    # Tables of 10 rows, 2 row blocks: runs of 5 positions, as the lowering cuts them.
    train = TrainableTmac(fitted, "cpu", 10)
    assert train.runs == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 24)]
    y_train = train(torch.from_numpy(x)).detach().numpy()
    low = lower("l", quantize_method("l", w, cal, m), LANES, 10)
    y_hw = HostDriver(write_program(tmp_path / "p", [low], config={}, source={}), get_backend("golden")).linear("l", x)
    # Same int8 activations and codes; the float32 matmul and Hadamard round differently from the
    # core's exact sums: a few float32 ulps of the largest term.
    assert np.max(np.abs(y_train - y_hw)) <= 1e-5 * np.max(np.abs(y_hw))
    # Straight through: a gradient reaches the codebooks and the input.
    xt = torch.from_numpy(x).requires_grad_()
    train(xt).sum().backward()
    assert float(train.weights[0].grad.abs().sum()) > 0 and float(xt.grad.abs().sum()) > 0


@pytest.mark.parametrize("latency", [1, 4])
def test_verilator_runs_tmac_layers_bit_for_bit_and_as_fast_as_the_model_says(tmp_path, latency):
    rng = np.random.default_rng(2)
    w, cal = _layer(rng, n=24, k=40)
    q = quantize_method("l", w, cal, LayerMethod(kind="tmac", v=2, c_w=16, group_rows=8))
    low = lower("l", q, LANES, 9)  # 3 positions per run: 7 runs, the last of 2
    prog = write_program(tmp_path / "p", [low], config={}, source={})
    x = rng.standard_normal((2, 40)).astype(np.float32)
    x[1] = 0.0  # an all-zero row: scale 1, every table entry the bias
    golden = HostDriver(prog, get_backend("golden"))
    sim = HostDriver(prog, get_backend("sim", core=GemvCoreParams(max_positions=9), memory_latency=latency))
    g, s = golden.run_int("l", golden.quantize("l", x)), sim.run_int("l", sim.quantize("l", x))
    assert np.array_equal(g.acc, s.acc) and golden.accumulators.hexdigest() == sim.accumulators.hexdigest()
    assert s.requests == {"cb": 2 * 3 * 20, "idx": 2 * 6 * 20}
    model = sum(tmac_layer_cost(LayerShape("l", r.positions * 2, 24), v=2, c_w=16, cb_bits=8, group_rows=8,
                                lanes=LANES, memory_latency=latency, clock_mhz=1.0, bandwidth_gbs=np.inf).cycles
                for r in low.runs)
    assert s.cycles == 2 * model


@pytest.mark.parametrize("hadamard_size", [0, 16])
def test_a_fits_float_output_is_the_inputs_times_its_codebook_weights(hadamard_size):
    # Oracle: the weight matrix rebuilt entry by entry from the codebooks (plain loops), rotated
    # back by the orthonormal Hadamard of golden.mx; the fit's own output must equal it.
    rng = np.random.default_rng(8)
    w, cal = _layer(rng, n=12, k=48)
    m = LayerMethod(kind="tmac", v=2, c_w=8, group_rows=8, hadamard=hadamard_size, fit="kmeans")
    fitted = cached_fit(w, cal, m)
    cb, idx = fitted.weight_codebooks[0].numpy(), fitted.widx[0].numpy()
    rebuilt = np.zeros((12, 48))
    for row in range(12):
        for p in range(24):
            rebuilt[row, 2 * p:2 * p + 2] = cb[p, row // 8, idx[row, p]]
    if hadamard_size:
        rebuilt = hadamard(rebuilt, hadamard_size)  # H/sqrt(n) is its own inverse
    x = rng.standard_normal((3, 48)).astype(np.float32)
    y = fitted.forward(torch.from_numpy(x)).double().numpy()
    assert np.allclose(y, x.astype(np.float64) @ rebuilt.T, rtol=1e-5, atol=1e-5)
