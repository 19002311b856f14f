"""What changes when the torch work runs on a GPU (``--device cuda``): how far each result moves
from the CPU's, and how long each step takes on either, on SmolLM2-135M.

* **Calibration**: the inputs of every linear layer on WikiText-2 valid, captured on each device;
  the largest difference, relative to the layer's largest input.
* **Fits**: one layer (``--layer``) fitted by each method of :data:`METHODS` on each device; its
  relative output error on held-out rows (k-means and GPTQ may pick other centroids or codes on a
  GPU, so the errors, not the codes, are compared).
* **Perplexity**: fp32 and one quantized configuration (NVFP4 weights, MXINT8 activations, on the
  golden backend) with the model's own operations on each device, on ``--windows`` windows of
  ``--window`` tokens of WikiText-2 test.

Needs a GPU (PyTorch's CUDA). The tolerances the tests hold these to are in docs/scale-out.md ("GPUs").

    .venv/bin/python bench/device_agreement.py --json out/bench/device_agreement.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lutforge.compiler.lut_methods import LayerMethod, fit_layer, method_label
from lutforge.compiler.session import MethodConfig, Session

DEVICES = ("cpu", "cuda")
METHODS = [LayerMethod(v=2, c_a=64, c_w=16, table_bits=8, fit="gptq", hadamard=64),
           LayerMethod(kind="tmac", v=2, c_w=16, fit="gptq", hadamard=64),
           LayerMethod(kind="mxint4", fit="gptq"), LayerMethod(kind="nvfp4", fit="gptq")]


def timed(fn):
    start = time.perf_counter()
    value = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return value, time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--windows", type=int, default=2)
    p.add_argument("--window", type=int, default=128)
    p.add_argument("--layer", default="layers.0.mlp.up")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench/device_agreement.py compares the CPU with a GPU, and PyTorch sees no CUDA device; run it "
              "where one is.", file=sys.stderr)
        return 2
    calibration = {"windows": 2, "window": 256, "rows": 512}
    sessions = {}
    result = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(), "cpu_threads": torch.get_num_threads(),
              "calibration": {}, "fits": {}, "perplexity": {}}
    for device in DEVICES:
        sessions[device], seconds = timed(lambda d=device: Session(calibration, progress=False,
                                                                   threads=torch.get_num_threads(), device=d))
        result["calibration"][f"{device}_s"] = seconds
    cpu, cuda = (sessions[d].calib.inputs for d in DEVICES)
    result["calibration"]["max_rel_difference"] = max(
        float(np.abs(cuda[n] - x).max() / np.abs(x).max()) for n, x in cpu.items())
    s = sessions["cpu"]
    w, x = s.weight(args.layer), s.calib.inputs[args.layer]
    held = s.heldout[args.layer][:256]
    ref = held.astype(np.float64) @ w.astype(np.float64).T
    for m in METHODS:
        row = {}
        for device in DEVICES:
            fitted, seconds = timed(lambda d=device: fit_layer(w, x, m, d))
            y = fitted.forward(torch.from_numpy(np.array(held))).double().numpy()
            row[f"{device}_error"] = float(((y - ref) ** 2).sum() / (ref ** 2).sum())
            row[f"{device}_s"] = seconds
        result["fits"][method_label(m)] = row
    for cfg in (None, MethodConfig("nvfp4", LayerMethod(kind="nvfp4"))):
        row = {}
        for device in DEVICES:
            r = s.perplexity(cfg, args.windows, args.window, device=device)
            row[device], row[f"{device}_s"] = r.perplexity, r.seconds
        row["rel_difference"] = abs(row["cuda"] - row["cpu"]) / row["cpu"]
        result["perplexity"]["fp32" if cfg is None else cfg.name] = row
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
