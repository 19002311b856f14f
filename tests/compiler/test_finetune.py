"""The finetune step: fake quantization equal to the golden quantizer, straight-through gradients,
resumable training whose result compiles, and its configuration errors."""

import shutil

import numpy as np
import pytest
import torch

from lutforge.compiler.config import ConfigError, parse_config
from lutforge.compiler.fake_quant import fake_quantize, quantize_values
from lutforge.golden import mx

FORMATS = ["mxint8", "mxint4", "mxfp4", "nvfp4", "mxfp8_e4m3"]


def operands(fmt: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Blocks from 2^-30 to 2^30, a zero block, and values on the element grids' half steps (ties).
    x = (rng.standard_normal((48, 64)) * np.exp2(rng.integers(-30, 30, (48, 1)))).astype(np.float32)
    x[0] = 0
    block = mx.get_block_format(fmt).block
    x[1, :block] = 0
    x[1, 0] = 6.0  # amax 6: e2m1 and int grids at scale 1 (MX) / s8 = 1 (NV)
    x[1, 1:9] = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25]
    x[2, :block] = np.linspace(-1, 1, block, dtype=np.float32) * np.float32(2.0**-140)  # subnormal range
    return x


@pytest.mark.parametrize("fmt", FORMATS)
def test_fake_quantization_equals_the_golden_quantizer_bit_for_bit(fmt):
    for seed in range(3):
        x = operands(fmt, seed)
        want = mx.dequantize(mx.quantize(x, fmt), fmt).astype(np.float32)
        got = quantize_values(torch.from_numpy(x), fmt).numpy()
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), fmt


def test_fake_quantization_pads_k_to_whole_blocks_like_the_compiler():
    x = operands("mxint4", 7)[:, :45]  # K = 45: one block and a padded one
    padded = np.zeros((48, 64), np.float32)
    padded[:, :45] = x
    want = mx.dequantize(mx.quantize(padded, "mxint4"), "mxint4")[:, :45].astype(np.float32)
    assert np.array_equal(quantize_values(torch.from_numpy(x), "mxint4").numpy(), want)


def test_the_gradient_passes_straight_through():
    x = torch.tensor(operands("nvfp4", 1), requires_grad=True)
    g = torch.randn_like(x)
    (fake_quantize(x, "nvfp4") * g).sum().backward()
    assert torch.equal(x.grad, g)


def test_unsupported_formats_are_refused_naming_the_supported_ones():
    with pytest.raises(ValueError, match=r"Fake quantization of mxfp6_e3m2 is not implemented; use one of"):
        quantize_values(torch.zeros(2, 32), "mxfp6_e3m2")


def base(**finetune):
    data = {"name": "t", "lut_methods": {"default": "mxint4"}}
    if finetune is not None:
        data["finetune"] = finetune
    return data


@pytest.mark.parametrize("data, message", [
    ({"name": "t", "finetune": {"steps": 2}},
     "Section 'finetune' in t trains the block-format layers of a 'lut_methods' configuration, and t has none; "
     "add 'lut_methods' or remove 'finetune'."),
    (base(steps=0), "finetune.steps=0 is not an integer from 1 to 1000000."),
    (base(lr=2.0), "finetune.lr = 2.0 is above 1, which no Adam fine-tuning survives; use a learning rate such "
                   "as 1e-5."),
    (base(eval_every=0), "finetune.eval_every=0 is not an integer from 1 to 1000000."),
    (base(epochs=3), "Unknown key finetune.epochs in t; allowed keys: steps, lr, codebook_lr, window, holdout, eval_every, "
                     "seed, block_mse."),
    (base(block_mse=-0.1), "finetune.block_mse = -0.1 is not a finite number of 0 or more; use 0 (the KL on the logits "
                           "alone) or a weight such as 0.1."),
    (base(block_mse="high"), "finetune.block_mse = 'high' is not a finite number of 0 or more; use 0 (the KL on the "
                             "logits alone) or a weight such as 0.1."),
])
def test_bad_finetune_sections_are_refused(data, message):
    with pytest.raises(ConfigError) as info:
        parse_config(data, "t")
    assert str(info.value).startswith(message)


def test_the_per_block_term_sees_each_blocks_output_as_the_next_block_reads_it(smollm2_ref):
    from lutforge.compiler.finetune import _block_outputs

    w = torch.arange(3, 11)[None]
    with _block_outputs(smollm2_ref, 0.0) as none:
        smollm2_ref(w)
    assert none == []
    names = [f"layers.{i}.attn.q" for i in range(1, smollm2_ref.config.n_layers)]
    with smollm2_ref.capture_inputs(names) as want, _block_outputs(smollm2_ref, 0.1) as got:
        smollm2_ref(w)
    assert len(got) == len(names) == 29
    for name, x in zip(names, got):
        assert torch.equal(x.reshape(-1, x.shape[-1]), want[name][0]), name


# -- a real (tiny) run on SmolLM2 --------------------------------------------------------------------

# Seed 0: its two steps lower the held-out perplexity (1349 -> 1235), so early stopping keeps the
# trained weights, which the tests compile; with seeds 1 and 3 the untrained weights are the best.
TINY = {"steps": 2, "lr": 1e-4, "window": 16, "holdout": 1, "eval_every": 2, "seed": 0}


def tiny_config():
    return parse_config({"name": "tiny", "lut_methods": {"default": "mxint4"}, "finetune": TINY}, "tiny")


def test_an_interrupted_run_resumes_to_the_uninterrupted_result_and_compiles_trained(
        smollm2_ir, smollm2_ref, tokenizer, tmp_path, monkeypatch):
    from lutforge.compiler import finetune as ft

    cfg = tiny_config()
    key = ft.finetune_key(cfg, smollm2_ir)
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path / "straight"))
    straight = ft.finetune(cfg, smollm2_ir, smollm2_ref, tokenizer, {}, device="cpu", progress=False)
    want, record = ft.trained_weights(key)
    assert straight.steps == 2 and straight.tokens_seen == 32 and len(straight.history) == 1
    assert straight.block_layers == tuple(smollm2_ref.linear_names) and not straight.lut_layers
    assert record["best_holdout_perplexity"] == min([record["initial_holdout_perplexity"]] +
                                                    [p["holdout_perplexity"] for p in record["history"]])
    # The whole model's weights and Adam moments run to gigabytes: hold one run's files at a time.
    shutil.rmtree(tmp_path / "straight")

    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path / "resumed"))
    first = ft.finetune(cfg, smollm2_ir, smollm2_ref, tokenizer, {}, device="cpu", progress=False, stop_after=1)
    assert first.steps == 1 and ft.trained_weights(key) is None  # no entry until the run finishes
    assert (tmp_path / "resumed" / "finetune" / f"{key}.ckpt").is_file()
    ft.finetune(cfg, smollm2_ir, smollm2_ref, tokenizer, {}, device="cpu", progress=False)
    got, _ = ft.trained_weights(key)
    assert not (tmp_path / "resumed" / "finetune" / f"{key}.ckpt").exists()
    assert sorted(got) == sorted(want)
    for name in want:
        assert np.array_equal(got[name], want[name]), name
    # The model's linears are the fp32 ones again.
    assert not smollm2_ref.overrides
    # Training moved the weights, and the compile flow quantizes the trained ones (from the cache:
    # no second training).
    name = "layers.3.mlp.down"
    assert not np.array_equal(want[name], smollm2_ir.weights[name])
    from lutforge.compiler.steps import Build, compile_model
    from lutforge.program.artifact import decode_block_layer

    monkeypatch.setattr(ft, "finetune", lambda *a, **k: pytest.fail("the finished run was trained again"))
    build = Build(tmp_path / "build", cfg, progress=False, device="cpu")
    program = compile_model(build, smollm2_ir, smollm2_ref.linear_names, reference=smollm2_ref, tokenizer=tokenizer)
    elements, scales = decode_block_layer(program.layers[name])
    blocks = mx.quantize(want[name], "mxint4")
    assert np.array_equal(elements[:, :want[name].shape[1]],
                          np.asarray(blocks.elements, np.uint8).reshape(want[name].shape))
    assert (tmp_path / "build" / "finetune" / "loss.png").stat().st_size > 1000
    assert any(line.startswith("finetune: 210 block-format and 0 LUT layers trained, 2 steps, held-out perplexity")
               for line in build.log)


@pytest.mark.slow  # two one-step runs of the whole model: minutes on 2 shared cores
def test_the_per_block_term_moves_the_training(smollm2_ir, smollm2_ref, tokenizer, tmp_path, monkeypatch):
    from lutforge.compiler import finetune as ft

    trained = {}
    for weight in (0.0, 1.0):
        cfg = parse_config({"name": "tiny", "lut_methods": {"default": "mxint4"},
                            "finetune": {**TINY, "steps": 1, "eval_every": 1, "block_mse": weight}}, "tiny")
        monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path / str(weight)))
        ft.finetune(cfg, smollm2_ir, smollm2_ref, tokenizer, {}, device="cpu", progress=False)
        record = ft.trained_weights(ft.finetune_key(cfg, smollm2_ir))
        trained[weight] = record[0] if record[1]["best_step"] else None
        shutil.rmtree(tmp_path / str(weight))
    name = "layers.3.mlp.down"
    assert trained[0.0] is not None and trained[1.0] is not None  # the step kept in both
    assert not np.array_equal(trained[0.0][name], trained[1.0][name])


@pytest.mark.slow
def test_a_damaged_checkpoint_is_named_and_training_starts_over(smollm2_ir, smollm2_ref, tokenizer, tmp_path,
                                                               monkeypatch, capsys):
    from lutforge.compiler import finetune as ft

    cfg = tiny_config()
    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    path = tmp_path / "finetune" / f"{ft.finetune_key(cfg, smollm2_ir)}.ckpt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    run = ft.finetune(cfg, smollm2_ir, smollm2_ref, tokenizer, {}, device="cpu", progress=False)
    assert run.steps == 2
    assert (f"lutforge: the fine-tuning checkpoint {path} cannot be read" in capsys.readouterr().err)


def test_devices_resolve_and_a_missing_gpu_is_named(monkeypatch):
    from lutforge.compiler.finetune import resolve_device
    from lutforge.support.errors import UsageError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(UsageError, match=r"^--device cuda was asked for but PyTorch sees no CUDA device \(torch "
                                         r"[^)]*\); use --device cpu or auto\.$"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"


def test_lut_codebooks_train_through_the_centroid_search_and_compile():
    from lutforge.compiler.trainable import TrainableLut
    from lutforge.compiler.layer_quant import quantize_method
    from lutforge.compiler.lut_methods import LayerMethod, fit_layer

    rng = np.random.default_rng(2)
    w = rng.standard_normal((32, 16)).astype(np.float32)
    x = (rng.standard_normal((400, 16)) * np.linspace(0.5, 2.0, 16)).astype(np.float32)
    m = LayerMethod(v=2, c_a=8, c_w=8, group_rows=16, table_bits=0, hadamard=8)
    fitted = fit_layer(w, x, m)
    lut = TrainableLut(fitted, "cpu")
    xt = torch.from_numpy(x)
    # At the fit, the training forward is the float-table LUT layer (centroid products summed).
    want = fitted.forward(xt).double()
    got = lut(xt).double()
    assert torch.allclose(got, want, rtol=0, atol=1e-4 * float(want.abs().max()))
    # Gradients reach the selected centroids and, straight through the search, the input.
    xg = xt[:5].clone().requires_grad_(True)
    lut(xg).sum().backward()
    assert xg.grad is not None and float(xg.grad.abs().sum()) > 0
    assert float(lut.act.grad.abs().sum()) > 0 and float(lut.weights[0].grad.abs().sum()) > 0
    # Training on the layer's own output error lowers it.
    ref = xt.double() @ torch.from_numpy(w).double().T
    before = float(((lut(xt).detach().double() - ref) ** 2).mean())
    opt = torch.optim.Adam(lut.params(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        loss = ((lut(xt) - ref.float()) ** 2).mean()
        loss.backward()
        opt.step()
    after = float(((lut(xt).detach().double() - ref) ** 2).mean())
    assert after < 0.97 * before  # C_a = 8 over 2-vectors bounds what codebooks alone can gain
    # What compiles carries the trained codebooks.
    arrays = lut.arrays("l")
    q = quantize_method("l", w, x, LayerMethod(**{**m.to_dict(), "table_bits": 8}),
                        codebooks=(arrays["l#act"], [arrays["l#w0"]]))
    assert np.array_equal(q.stages[0].act_codebooks, arrays["l#act"])
    assert np.array_equal(q.stages[0].weight_codebooks, arrays["l#w0"])


@pytest.mark.parametrize("table_bits,scales", [(8, "block"), (4, "block"), (4, "layer")])
def test_the_lut_training_forward_rounds_the_tables_as_the_core_runs_them(tmp_path, table_bits, scales):
    from lutforge.backends import get_backend
    from lutforge.compiler.layer_quant import quantize_method
    from lutforge.compiler.lower import lower
    from lutforge.compiler.lut_methods import LayerMethod, fit_layer
    from lutforge.compiler.trainable import TrainableLut
    from lutforge.program.artifact import write_program
    from lutforge.program.host import HostDriver

    rng = np.random.default_rng(5)
    w = rng.standard_normal((32, 16)).astype(np.float32)
    cal = (rng.standard_normal((400, 16)) * np.linspace(0.5, 2.0, 16)).astype(np.float32)
    x = rng.standard_normal((6, 16)).astype(np.float32)
    m = LayerMethod(v=2, c_a=8, c_w=8, group_rows=16, table_bits=table_bits, scales=scales)
    lut = TrainableLut(fit_layer(w, cal, m), "cpu")

    def hardware(lut) -> np.ndarray:
        arrays = lut.arrays("l")
        q = quantize_method("l", w, cal, m, codebooks=(arrays["l#act"], [arrays["l#w0"]]))
        program = write_program(tmp_path / f"p{len(list(tmp_path.iterdir()))}", [lower("l", q, 4, 8)],
                                config={}, source={})
        return HostDriver(program, get_backend("golden")).linear("l", x)

    def float_tables(lut) -> np.ndarray:  # the same codebooks, tables not rounded
        fitted = lut.fitted
        fitted.method = LayerMethod(**{**m.to_dict(), "table_bits": 0})
        try:
            return fitted.forward(torch.from_numpy(x)).numpy()
        finally:
            fitted.method = m

    xt = torch.from_numpy(x).requires_grad_(True)
    y = lut(xt)
    y_hw = hardware(lut)
    # Equal to the core's integer tables up to float order; the float tables are farther off.
    tolerance = 1e-5 * np.max(np.abs(y_hw))
    assert np.max(np.abs(y.detach().numpy() - y_hw)) <= tolerance
    assert np.max(np.abs(float_tables(lut) - y_hw)) > 10 * tolerance
    # Straight through the rounding: gradients reach both codebooks and the input.
    (y * torch.from_numpy(rng.standard_normal(y.shape).astype(np.float32))).sum().backward()
    assert float(xt.grad.abs().sum()) > 0
    assert float(lut.act.grad.abs().sum()) > 0 and float(lut.weights[0].grad.abs().sum()) > 0
    # After an optimizer step the rounded tables are those of the new codebooks.
    torch.optim.SGD(lut.params(), lr=0.05).step()
    assert np.max(np.abs(lut(torch.from_numpy(x)).detach().numpy() - hardware(lut))) <= tolerance


def test_the_held_out_windows_are_the_last_of_valid_where_no_calibration_reaches():
    from lutforge.compiler.finetune import _windows

    # 103 tokens make 10 whole windows of 10; the 3 left over are dropped.
    held, train = _windows(np.arange(103), 10, 2)
    assert held.tolist() == [list(range(80, 90)), list(range(90, 100))]
    assert train.tolist() == [list(range(10 * i, 10 * i + 10)) for i in range(8)]
