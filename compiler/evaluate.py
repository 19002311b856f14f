"""Compare and report: per-layer error against PyTorch fp32, backend-against-backend bit-exactness,
whole-model perplexity, model-vs-simulated cycles; markdown + PNG + JSON reports.

Float metrics of an output ``y`` against the fp32 reference ``r`` (both (T, N), float64):
``max_abs = max |y - r|``, ``rel_rms = ||y - r||_2 / ||r||_2``, ``cosine = <y, r> / (|y| |r|)``
over all tokens and rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["float_metrics", "Mismatch", "first_mismatch", "plot_layer_errors",
           "markdown_table"]


def float_metrics(y, ref) -> dict:
    y = np.asarray(y, dtype=np.float64).ravel()
    r = np.asarray(ref, dtype=np.float64).ravel()
    d = y - r
    nr, ny = float(np.linalg.norm(r)), float(np.linalg.norm(y))
    return {"max_abs": float(np.max(np.abs(d), initial=0.0)),
            "rel_rms": float(np.linalg.norm(d) / nr) if nr else float(np.linalg.norm(d)),
            "cosine": float(y @ r / (ny * nr)) if ny and nr else float(ny == nr)}


@dataclass(frozen=True)
class Mismatch:
    layer: str
    token: int
    run: int
    element: int
    expected: int
    actual: int
    count: int

    def __str__(self) -> str:
        return (f"first mismatch in layer {self.layer}: token {self.token}, run {self.run}, output row "
                f"{self.element}: expected {self.expected} ({self.expected:#x}), got {self.actual} "
                f"({self.actual:#x}); {self.count} differing accumulators in this layer")


def first_mismatch(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray],
                   order: list[str] | None = None) -> Mismatch | None:
    """The first differing accumulator, layers in ``order`` (default: the order of ``expected``);
    arrays are (T, runs, rows) integers."""
    for name in order or list(expected):
        e, a = np.asarray(expected[name]), np.asarray(actual[name])
        if e.shape != a.shape:
            raise ValueError(f"Layer {name}: expected accumulators of shape {e.shape}, got {a.shape}; "
                             f"the backends ran different programs or token counts.")
        diff = np.argwhere(e != a)
        if len(diff):
            t, r, n = (int(i) for i in diff[0])
            return Mismatch(name, t, r, n, int(e[t, r, n]), int(a[t, r, n]), len(diff))
    return None


def plot_layer_errors(path: Path, rows: list[dict], title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["layer"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.bar(range(len(rows)), [r["rel_rms"] for r in rows], color="tab:red")
    ax1.set_ylabel("relative RMS error vs fp32")
    ax2.bar(range(len(rows)), [r["cosine"] for r in rows], color="tab:blue")
    ax2.set_ylabel("cosine similarity vs fp32")
    lo = min([r["cosine"] for r in rows] + [0.9])
    ax2.set_ylim(max(0.0, lo - 0.02), 1.0)
    for ax in (ax1, ax2):
        ax.set_xticks(range(len(rows)), names, rotation=60, ha="right", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown_table(header: list[str], rows: list[list]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
