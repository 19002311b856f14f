"""``--device``: the model's own operations on a GPU where one is asked for, the quantized layers on
the host either way; refused in one line where it cannot be honoured. The CUDA comparison runs only
where PyTorch sees a GPU (CI has none): there the perplexity must agree with the CPU's within the
tolerance stated in docs/scale-out.md."""

import pytest
import torch
from bad_input import Case, check_case

from lutforge.compiler.config import load_config
from lutforge.compiler.torch_reference import numpy_linear
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
                                  ("explore", "configs/explore-small.yaml", "--device", "cuda")])
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
    for c in (None, cfg):
        cpu, cuda = (s.perplexity(c, 2, 128, device=d).perplexity for d in ("cpu", "cuda"))
        assert cuda == pytest.approx(cpu, rel=1e-3)
