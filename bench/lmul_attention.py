"""Does L-Mul cost accuracy in attention? SmolLM2-135M's perplexity on WikiText-2 test with attention's
two products (the scores q·kᵀ and the weighted values P·V, in all 30 blocks) computed in other
number formats, everything else fp32 (linears, softmax, norms).

Rows: fp32 (the reference), operands rounded to bf16 / e4m3 with exact products, and L-Mul
(arXiv 2410.00907) with 3, 4 and 7 mantissa bits and 8 exponent bits (fp32's range with a shortened
mantissa, as the paper emulates it; 7 bits is bf16), once with the paper's offset and once with the
best offset. The best offset is chosen on WikiText-2 *valid* (never on test): the lowest mean NLL
over ``--search-windows`` windows of ``--search-window`` tokens among the paper's offset and
``bias·2^m ± c`` for c = 0 and every power of two below 2^m (the paper's is ``bias·2^m − 2^(m−l(m))``;
below ``bias·2^m`` the offset adds a constant for the dropped mantissa product, above it subtracts).

Arithmetic: ``compiler/attention_numerics.py`` — operands rounded to nearest even (saturating),
L-Mul products by ``golden.lmul``'s default policy, summed in fp32 in the split form (3 + 2^m
matrix products per head: equal to the elementwise sums up to fp32 rounding, tested; elementwise
L-Mul costs ~40 minutes per 512-token window on one core), softmax in fp32. 1/sqrt(64) is folded
into q (exact).

    python bench/lmul_attention.py --windows N [--window T] [--search-from JSON] [--config YAML] [--json PATH] [--plot PATH]

``--config`` runs the linears as that configuration quantizes them, on the golden backend (the
hardware arithmetic; the Program compiled under ``build/lmul_attention/<name>``), instead of fp32:
the same question with the shipped quantized model.

writes ``{"rows": [{"attention", "mul", "mantissa_bits", "offset", "perplexity"}], "windows", ...}``,
the fp32 row first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np

from lutforge.compiler.attention_numerics import AttentionNumerics, attention
from lutforge.golden.formats import Format, shortened_fp32
from lutforge.golden.lmul import default_offset

EXACT = ("fp32", "bf16", "e4m3")
LMUL_MANTISSAS = (3, 4, 7)


def offset_candidates(fmt: Format) -> list[int]:
    base = fmt.bias << fmt.man_bits
    steps = [1 << j for j in range(fmt.man_bits)]
    return sorted({default_offset(fmt), base} | {base - c for c in steps} | {base + c for c in steps})


def nll(model, numerics: AttentionNumerics | None, tokens, window: int, windows: int) -> float:
    from lutforge.compiler.perplexity import perplexity

    model.replace_attention(None if numerics is None else
                            lambda q, k, v, mask: attention(q, k, v, mask, numerics, split=True))
    try:
        return perplexity(model, tokens, window, windows, progress=False).nll
    finally:
        model.replace_attention(None)


def row(numerics: AttentionNumerics, ppl: float, seconds: float) -> dict:
    fmt = numerics.format
    return {"attention": fmt.name, "mul": numerics.mul, "mantissa_bits": fmt.man_bits,
            "offset": numerics.lmul_offset if numerics.mul == "lmul" else None,
            "perplexity": ppl, "seconds": round(seconds, 1)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--windows", type=int, default=16, help="WikiText-2 test windows (default 16)")
    ap.add_argument("--window", type=int, default=512, help="tokens per window (default 512)")
    ap.add_argument("--search-windows", type=int, default=2, help="valid windows scoring each offset (default 2)")
    ap.add_argument("--search-window", type=int, default=128, help="tokens per valid window (default 128)")
    ap.add_argument("--search-from", type=Path, metavar="JSON",
                    help="take the offset search from an earlier run's JSON instead of repeating it")
    ap.add_argument("--config", type=Path, metavar="YAML",
                    help="the linears quantized by this configuration, on the golden backend (default: fp32)")
    ap.add_argument("--json", type=Path, help="write the rows as JSON")
    ap.add_argument("--plot", type=Path, help="draw perplexity per row (PNG)")
    args = ap.parse_args(argv)

    import torch
    from tqdm import tqdm

    from lutforge.compiler.checkpoint import load_model
    from lutforge.compiler.data import wikitext2_tokens

    torch.set_grad_enabled(False)
    ir, model, tokenizer = load_model(progress=False)
    test, _ = wikitext2_tokens("test", tokenizer)
    valid, _ = wikitext2_tokens("valid", tokenizer)
    with contextlib.ExitStack() as stack:
        if args.config:
            stack.enter_context(quantized_linears(args.config, ir, model, tokenizer))
        return measure(args, model, test, valid, tqdm)


@contextlib.contextmanager
def quantized_linears(path: Path, ir, model, tokenizer):
    """Every linear of ``model`` as the configuration at ``path`` compiles it, on the golden backend."""
    from lutforge.backends import get_backend
    from lutforge.compiler.config import load_config
    from lutforge.compiler.steps import Build, compile_model
    from lutforge.compiler.torch_reference import routed
    from lutforge.program.host import HostDriver

    cfg = load_config(path)
    program = compile_model(Build(Path("build/lmul_attention") / cfg.name, cfg, True), ir, model.linear_names,
                            reference=model, tokenizer=tokenizer)
    with routed(model, HostDriver(program, get_backend("golden"))):
        yield


def measure(args, model, test, valid, tqdm) -> dict:
    if args.search_from:
        done = json.loads(args.search_from.read_text())["offset_search"]
        args.search_windows, args.search_window = done["windows"], done["window"]
        search = {int(m): {int(o): s for o, s in v.items()} for m, v in done["mean_nll"].items()}
    else:
        search = {}
        jobs = [(m, off) for m in LMUL_MANTISSAS for off in offset_candidates(shortened_fp32(m))]
        for m, off in tqdm(jobs, desc="offsets on valid"):
            numerics = AttentionNumerics(shortened_fp32(m), "lmul", off)
            search.setdefault(m, {})[off] = nll(model, numerics, valid, args.search_window, args.search_windows)
    best = {m: min(scores, key=scores.get) for m, scores in search.items()}

    settings = [AttentionNumerics(f) for f in EXACT]
    for m in LMUL_MANTISSAS:
        fmt = shortened_fp32(m)
        settings.append(AttentionNumerics(fmt, "lmul"))
        if best[m] != default_offset(fmt):
            settings.append(AttentionNumerics(fmt, "lmul", best[m]))
    rows = []
    for numerics in tqdm(settings, desc="test perplexity"):
        start = time.perf_counter()
        ppl = float(np.exp(nll(model, numerics, test, args.window, args.windows)))
        rows.append(row(numerics, ppl, time.perf_counter() - start))
        rows[-1]["best_offset"] = numerics.mul == "lmul" and numerics.lmul_offset == best[numerics.format.man_bits]
        print(f"{numerics.label():32s} perplexity {ppl:9.3f}  ({rows[-1]['seconds']:.0f} s)", flush=True)
    result = {"rows": rows, "windows": args.windows, "window": args.window,
              "linears": str(args.config) if args.config else "fp32",
              "offset_search": {"split": "valid", "windows": args.search_windows, "window": args.search_window,
                                "mean_nll": {str(m): {str(o): s for o, s in v.items()} for m, v in search.items()},
                                "best": {str(m): o for m, o in best.items()}}}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    if args.plot:
        plot(rows, args.plot, args.windows, args.window, args.config)
    return result


def plot(rows: list[dict], path: Path, windows: int, window: int, config: Path | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['attention']} {r['mul']}" + (f"\noffset {r['offset']}" + (" (best)" if r["best_offset"] else "")
                                                if r["mul"] == "lmul" else "") for r in rows]
    fp32 = rows[0]["perplexity"]
    fig, ax = plt.subplots(figsize=(9, 4))
    cost = [100 * (r["perplexity"] / fp32 - 1) for r in rows]
    ax.bar(range(len(rows)), cost, color=["tab:gray" if r["mul"] == "exact" else "tab:blue" for r in rows])
    for x, c, r in zip(range(len(rows)), cost, rows):
        ax.annotate(f"{r['perplexity']:.2f}", (x, c), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel(f"perplexity over fp32's {fp32:.2f} (%)")
    linears = f"linears {config.stem}" if config else "fp32 linears"
    ax.set_title(f"SmolLM2-135M, {linears}, attention products varied, WikiText-2 test ({windows} × {window} tokens)",
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
