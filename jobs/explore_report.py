"""What ``lutforge explore`` leaves in its output folder: the table (``explore.md``), the Pareto
plots (``pareto_speed.png``: perplexity against tokens/s; ``pareto_area.png``: perplexity against
LUT4s), the configuration of every Pareto point (``configs/ID.yaml``, ready for ``lutforge
compile``) and, with ``--json``, every number."""

from __future__ import annotations

from pathlib import Path

import yaml

from .explore import ExploreResult, PointResult, front

__all__ = ["markdown", "write_report"]


def _num(value, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def markdown(result: ExploreResult) -> str:
    tokens = sorted({p.tokens for p in result.points})
    lines = [f"Space {result.space}: {len(result.points)} points ({result.sampler} sampler, {result.executor} executor, "
             f"{result.workers} workers, {result.seconds:.0f} s). Perplexity of the hardware arithmetic on "
             f"{'/'.join(map(str, tokens))} tokens of WikiText-2 test; * on the perplexity/speed front, "
             f"+ on the perplexity/LUT front.", "",
             "| id | point | target | perplexity | bits/weight | tokens/s | cycles/token | LUT4 | FF | DSP | EBR | "
             "Fmax MHz | fits |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    marks = {i: "*" for i in result.pareto}
    for i in result.pareto_area:
        marks[i] = marks.get(i, "") + "+"
    for p in sorted(result.points, key=lambda p: (p.target, p.perplexity, -p.tokens_per_s)):
        fits = "yes" if p.fits else "no: " + "; ".join(p.why_not)
        lines.append(f"| {p.id}{marks.get(p.id, '')} | {p.label} | {p.target} | {p.perplexity:.3f} | "
                     f"{p.bits_per_weight:.3f} | {p.tokens_per_s:.4g} | {p.cycles_per_token:,} | {_num(p.lut4, ',')} | "
                     f"{_num(p.ff, ',')} | {_num(p.dsp, 'd')} | {_num(p.ebr, 'd')} | {_num(p.fmax_mhz, '.1f')} | {fits} |")
    if result.sim_checks:
        lines += ["", "| sim check: point | layer | simulated cycles | model cycles | error |", "|---|---|---|---|---|"]
        lines += [f"| {c.point} | {c.layer} | {c.simulated:,} | {c.model:,} | {100 * c.error:+.2f} % |"
                  for c in result.sim_checks]
    if result.retried:
        lines += ["", "Retried: " + "; ".join(result.retried)]
    if result.notes:
        lines += ["", *result.notes]
    return "\n".join(lines)


def _plot(points: list[PointResult], front_ids: list[str], x, speed, xlabel: str, title: str, path: Path) -> None:
    """Perplexity against ``x`` per target, each target's own front as a step line (a board and a
    datacenter card are different purchases), and the front over all targets labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    targets = sorted({p.target for p in points})
    for i, target in enumerate(targets):
        color = f"C{i}"
        mine = [p for p in points if p.target == target and x(p) is not None]
        for fits, face in ((True, color), (False, "none")):
            rows = [p for p in mine if p.fits == fits]
            if rows:
                ax.scatter([x(p) for p in rows], [p.perplexity for p in rows], s=36, marker="o",
                           edgecolors=color, facecolors=face, label=f"{target}" + ("" if fits else " (does not fit)"))
        own = set(front(mine, speed))
        on = sorted((p for p in mine if p.id in own), key=x)
        if len(on) > 1:
            ax.step([x(p) for p in on], [p.perplexity for p in on], where="post", color=color, lw=1)
    for p in points:
        if p.id in front_ids:
            ax.annotate(p.label, (x(p), p.perplexity), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("perplexity (hardware arithmetic)")
    ax.set_title(title + " (lines: each target's front; labels: the front over all)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(result: ExploreResult, folder: Path) -> dict[str, Path]:
    """The table, the plots and the Pareto points' configurations under ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"table": folder / "explore.md", "speed": folder / "pareto_speed.png",
             "area": folder / "pareto_area.png", "configs": folder / "configs"}
    paths["table"].write_text(markdown(result) + "\n")
    _plot(result.points, result.pareto, lambda p: p.tokens_per_s, lambda p: p.tokens_per_s,
          "decoded tokens/s (performance model)", f"{result.space}: perplexity vs speed", paths["speed"])
    _plot(result.points, result.pareto_area, lambda p: p.lut4, lambda p: -p.lut4 if p.lut4 is not None else None,
          "LUT4s of the cores (yosys + nextpnr)", f"{result.space}: perplexity vs area", paths["area"])
    paths["configs"].mkdir(exist_ok=True)
    for old in paths["configs"].glob("*.yaml"):
        old.unlink()  # configurations of an earlier run's front are not this run's
    by_id = {p.id: p for p in result.points}
    for ident in dict.fromkeys(result.pareto + result.pareto_area):
        p = by_id[ident]
        head = (f"# Pareto point {p.id} of space {result.space}: {p.label} on {p.target}; perplexity "
                f"{p.perplexity:.3f} on {p.tokens} tokens, {p.tokens_per_s:.4g} tokens/s, "
                f"{_num(p.lut4, ',')} LUT4s.\n")
        (paths["configs"] / f"{p.id}.yaml").write_text(head + yaml.safe_dump(p.config, sort_keys=False))
    return paths
