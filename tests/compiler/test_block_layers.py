"""Block-format layers through the one compile path: quantize by method, lower onto the block
core, write and read the Program, run on the golden and the Verilator backends (bit for bit equal),
and the host's arithmetic around them."""

import numpy as np
import pytest

from lutforge.backends import get_backend
from lutforge.program.host import HostDriver
from lutforge.compiler.layer_quant import BlockWeights, LutStages, from_bytes, quantize_method, to_bytes
from lutforge.compiler.lower import lower
from lutforge.compiler.lut_methods import LayerMethod
from lutforge.golden import mx
from lutforge.golden.block_gemv import block_gemv, host_output
from lutforge.program.artifact import ProgramError, decode_block_layer, read_program, write_program
from lutforge.program.core import GemvCoreParams

LANES = 4
# The block core's build in these tests: 4 lanes, a 256-chunk activation buffer (shared with
# tests/hdl/test_block_gemv.py's builds through the content-addressed build cache).
CORE = GemvCoreParams(max_positions=256)


def _layer(rng, n=13, k=80):
    w = rng.standard_normal((n, k)).astype(np.float32)
    x = rng.standard_normal((32, k)).astype(np.float32)
    return w, x


@pytest.mark.parametrize("kind", ["mxint8", "mxint4", "mxfp4", "nvfp4"])
def test_a_block_layer_survives_the_program_and_runs_the_golden_arithmetic(tmp_path, kind):
    rng = np.random.default_rng(1)
    w, cal = _layer(rng)
    q = quantize_method("layers.0.mlp.up", w, cal, LayerMethod(kind=kind))
    assert isinstance(q, BlockWeights) and from_bytes(to_bytes(q)).elements.tobytes() == q.elements.tobytes()
    # K = 80 is padded to whole 32-element activation blocks with zero weights.
    assert q.elements.shape == (13, 96) and q.in_features == 80
    low = lower("layers.0.mlp.up", q, LANES, 256)
    prog = read_program(write_program(tmp_path / "p", [low], config={}, source={}).path)
    back = prog.layers["layers.0.mlp.up"]
    elements, scales = decode_block_layer(back)
    assert np.array_equal(elements, q.elements) and np.array_equal(scales, q.scales)
    assert back.tensor_scale == q.tensor_scale

    x = rng.standard_normal((3, 80)).astype(np.float32)
    driver = HostDriver(prog, get_backend("golden"))
    y = driver.linear("layers.0.mlp.up", x)
    # The same arithmetic from its parts: activations padded and quantized to MXINT8, the golden
    # block GEMV, NVFP4's tensor scale in float32.
    xp = np.zeros((3, 96), np.float32)
    xp[:, :80] = x
    xb = mx.quantize(xp, "mxint8")
    want = host_output(block_gemv(xb.elements, xb.scales, q.elements, q.scales, low.format), q.tensor_scale)
    assert np.array_equal(y.astype(np.float32).view(np.uint32), want.view(np.uint32))
    # ... which is the dequantized weights times the dequantized activations up to fp32 rounding of
    # the sums: within a few per mille of the product's scale here.
    exact = mx.dequantize(xb, "mxint8") @ mx.dequantize(mx.Blocks(q.elements, q.scales, q.tensor_scale), kind).T
    assert np.max(np.abs(y - exact)) <= 1e-5 * np.max(np.abs(exact))


@pytest.mark.parametrize("kind", ["mxint4", "nvfp4"])
def test_verilator_runs_block_layers_bit_for_bit_as_golden(tmp_path, kind):
    rng = np.random.default_rng(2)
    w, cal = _layer(rng, n=11, k=64)
    low = lower("l", quantize_method("l", w, cal, LayerMethod(kind=kind)), LANES, 256)
    prog = write_program(tmp_path / "p", [low], config={}, source={})
    x = rng.standard_normal((3, 64)).astype(np.float32)
    golden, sim = HostDriver(prog, get_backend("golden")), HostDriver(prog, get_backend("sim", core=CORE))
    g, s = golden.run_int("l", golden.quantize("l", x)), sim.run_int("l", sim.quantize("l", x))
    assert s.acc.shape == (3, 1, 12) and np.array_equal(g.acc, s.acc)
    assert golden.accumulators.hexdigest() == sim.accumulators.hexdigest()
    assert s.cycles > 0 and s.requests == {"w": 3 * 3 * 64 // low.format.chunk, "s": 3 * 3 * 64 // low.format.chunk}


def test_a_layer_with_more_chunks_than_the_core_buffers_is_refused():
    rng = np.random.default_rng(3)
    q = quantize_method("l", *_layer(rng, n=4, k=96), LayerMethod(kind="nvfp4"))
    with pytest.raises(ProgramError, match=r"^Layer l needs 6 activation chunks of 16 in one run but the block "
                                           r"core buffers at most 4; build the cores with core.max_positions >= 6\.$"):
        lower("l", q, LANES, 4)


def test_a_residual_lut_method_lowers_both_stages_as_runs_the_host_adds(tmp_path):
    from lutforge.compiler.lut_methods import fit_layer, to_lut_layers

    rng = np.random.default_rng(4)
    w, cal = _layer(rng, n=16, k=32)
    m = LayerMethod(v=2, c_a=8, c_w=4, group_rows=0, table_bits=8, residual=True, hadamard=8, iterations=2)
    fitted = fit_layer(w, cal, m)
    stages = LutStages(tuple(to_lut_layers(fitted)), m.hadamard)
    low = lower("l", stages, LANES, 64)
    assert len(low.runs) == 2 and low.hadamard == 8
    prog = read_program(write_program(tmp_path / "p", [low], config={}, source={}).path)
    x = rng.standard_normal((5, 32)).astype(np.float32)
    y = HostDriver(prog, get_backend("golden")).linear("l", x)
    # Each stage alone, through the same driver arithmetic, sums to the two-stage output.
    parts = []
    for stage in stages.stages:
        one = write_program(tmp_path / f"s{len(parts)}", [lower("l", LutStages((stage,), 8), LANES, 64)],
                            config={}, source={})
        parts.append(HostDriver(one, get_backend("golden")).linear("l", x))
    assert np.allclose(y, parts[0] + parts[1], rtol=0, atol=1e-9)
    # And both stages together approximate the fitted layer's own (PyTorch) output on rotated inputs.
    import torch
    ref = fitted.forward(torch.from_numpy(x)).double().numpy()
    assert np.linalg.norm(y - ref) <= 0.05 * np.linalg.norm(ref)
