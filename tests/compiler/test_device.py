"""``--device``: calibration, fits and the model's own operations on a GPU where one is asked for,
the quantized layers on the host either way; what a GPU computes cached apart from the CPU's;
refused in one line where it cannot be honoured. The CUDA comparisons run only where PyTorch sees
a GPU (CI has none): there each result must agree with the CPU's within the tolerance stated in
docs/scale-out.md ("GPUs")."""

import numpy as np
import pytest
import torch
from bad_input import Case, check_case

from lutforge.compiler.config import load_config
from lutforge.compiler.lut_methods import LayerMethod, fit_cache_path, fit_layer
from lutforge.compiler.torch_reference import device_key, numpy_linear
from lutforge.jobs.run import run_model
from lutforge.support.errors import UsageError

NO_CUDA = not torch.cuda.is_available()


def test_a_host_layer_answers_on_the_device_it_was_called_on():
    layer = numpy_linear(lambda x: x[:, :2] * 2)
    y = layer(torch.ones(1, 3, 4))
    assert y.device == torch.device("cpu") and y.shape == (1, 3, 2) and float(y.sum()) == 12.0


def test_whole_blocks_on_the_units_leave_nothing_for_a_gpu(tmp_path):
    cfg = load_config("configs/smollm2-block.yaml")
    with pytest.raises(UsageError, match=r"^Configuration 'smollm2-block' runs whole decoder blocks on the units "
                                         r"\(blocks: hardware\), which leaves nothing of it for --device cuda; use "
                                         r"--device cpu\.$"):
        run_model([cfg], tmp_path, windows=1, window=64, device="cuda")


@pytest.mark.skipif(not NO_CUDA, reason="the message is for machines without a GPU")
@pytest.mark.parametrize("argv", [("run", "--device", "cuda", "--windows", "1"),
                                  ("explore", "configs/explore-small.yaml", "--device", "cuda"),
                                  ("quantize", "--budget", "4", "-o", "out.yaml", "--device", "cuda")])
def test_cuda_without_a_gpu_is_refused(argv, tmp_path, capsys):
    check_case(Case(argv[0] + "-cuda", argv, f"lutforge: --device cuda was asked for but PyTorch sees no CUDA "
                                            f"device (torch {torch.__version__}); use --device cpu or auto."),
               tmp_path, capsys)


@pytest.mark.slow
@pytest.mark.skipif(NO_CUDA, reason="PyTorch sees no CUDA device")
def test_cuda_perplexity_agrees_with_the_cpu():
    from lutforge.compiler.lut_methods import LayerMethod
    from lutforge.compiler.session import MethodConfig, Session

    s = Session({"windows": 1, "window": 128, "rows": 128}, progress=False)
    cfg = MethodConfig("nvfp4", LayerMethod(kind="nvfp4"))
    # fp32: the float operations' last bits only. A quantized configuration: an activation near a
    # rounding boundary of its MXINT8 blocks can round to the next step on one device and not on the
    # other, so a whole quantization step moves, not an ulp (docs/scale-out.md, "GPUs").
    for c, tolerance in ((None, 1e-3), (cfg, 1e-2)):
        cpu, cuda = (s.perplexity(c, 2, 128, device=d).perplexity for d in ("cpu", "cuda"))
        assert cuda == pytest.approx(cpu, rel=tolerance)


def _layer(seed: int = 0, n: int = 96, k: int = 128, rows: int = 768):
    """A layer with correlated inputs (as a model's are), its calibration rows and held-out rows."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((k, k)).astype(np.float32) / np.sqrt(k)
    x = (rng.standard_normal((rows, k)).astype(np.float32) @ mix) * (1 + 3 * rng.random(k, dtype=np.float32))
    return rng.standard_normal((n, k)).astype(np.float32), x[:512], x[512:]


def test_a_cache_key_names_the_kind_of_device_and_nothing_for_the_cpu(tmp_path):
    assert device_key("cpu") == [] and device_key("cuda") == device_key("cuda:1") == ["cuda"]
    w, x, _ = _layer()
    m = LayerMethod(kind="tmac", v=2, c_w=16, fit="gptq")
    # The CPU's key is the one a caller naming no device gets; a GPU's fit is an entry of its own.
    assert fit_cache_path(tmp_path, w, x, m, "cpu") == fit_cache_path(tmp_path, w, x, m)
    assert fit_cache_path(tmp_path, w, x, m, "cuda") != fit_cache_path(tmp_path, w, x, m)
    assert fit_cache_path(tmp_path, w, x, m, "cuda:1") == fit_cache_path(tmp_path, w, x, m, "cuda")


FITS = [LayerMethod(v=2, c_a=16, c_w=16, fit="gptq", hadamard=64), LayerMethod(v=2, c_a=16, c_w=16),
        LayerMethod(kind="tmac", v=2, c_w=16, fit="gptq", hadamard=64), LayerMethod(kind="tmac", v=1, c_w=16, fit="act"),
        LayerMethod(kind="mxint4", fit="gptq"), LayerMethod(kind="nvfp4", fit="gptq")]


@pytest.mark.skipif(NO_CUDA, reason="PyTorch sees no CUDA device")
@pytest.mark.parametrize("m", FITS, ids=lambda m: f"{m.kind}-{m.fit}")
def test_a_fit_on_cuda_comes_back_on_the_cpu_and_scores_like_the_cpus(m):
    # k-means and GPTQ on a GPU round in other last bits, so they may choose other centroids or codes:
    # what must agree is the fitted layer's output error on held-out rows (5 %, docs/scale-out.md).
    w, x, held = _layer()
    ref = held.astype(np.float64) @ w.T.astype(np.float64)
    errors = {}
    for device in ("cpu", "cuda"):
        fitted = fit_layer(w, x, m, device)
        tensors = [t for t in (fitted.weight_q, fitted.act_codebooks, *(fitted.weight_codebooks or []),
                               *(fitted.widx or [])) if t is not None]
        assert tensors and all(t.device.type == "cpu" for t in tensors)
        y = fitted.forward(torch.from_numpy(held)).double().numpy()
        errors[device] = float(((y - ref) ** 2).sum() / (ref ** 2).sum())
    assert errors["cuda"] == pytest.approx(errors["cpu"], rel=0.05)


@pytest.mark.slow
@pytest.mark.skipif(NO_CUDA, reason="PyTorch sees no CUDA device")
def test_a_calibration_capture_on_cuda_agrees_with_the_cpus(smollm2_ref, tokenizer, tmp_path, monkeypatch):
    from lutforge.compiler.calibration import capture_calibration

    monkeypatch.setenv("LUTFORGE_CACHE", str(tmp_path))
    cpu, cuda = (capture_calibration(smollm2_ref, tokenizer, n_windows=2, window=128, rows=64, progress=False,
                                     device=d) for d in ("cpu", "cuda"))
    assert cpu.key != cuda.key and cpu.inputs.keys() == cuda.inputs.keys()
    for name, x in cpu.inputs.items():
        # fp32 through 30 blocks on either device: the inputs agree to 1e-4 of the layer's largest.
        assert np.abs(cuda.inputs[name] - x).max() <= 1e-4 * np.abs(x).max(), name
