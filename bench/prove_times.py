"""Formal proofs: time per proof and per engine, and mutation scores of the proofs and the tests.

Runs the registered proofs (``lutforge.formal.suite.proofs``) without the result cache, times
a few combinational proofs on every engine (yosys ``sat``, SymbiYosys ``smtbmc`` with each solver
that is installed), and runs the fault-injection campaign over the mutation targets: per block,
how many mutants the proofs kill, how many the simulation tests kill, how many are equivalent
(proof PASS and exhaustive simulation agrees, listed one by one), scores over every injected
mutant and over the non-equivalent ones, and whether every counterexample replayed.

    python bench/prove_times.py [--select fast|all|small|wide|none|NAME,...] [--skip PART,...] [--mutants N]
                                [--jobs N] [--timeout S] [--json PATH] [--plot PATH]

Defaults write ``out/bench/prove_times.json`` and ``out/bench/prove_times.png``.
"""

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

WIDE_FORMATS = ("bf16", "fp16", "fp32")
ENGINE_CASES = ("lmul-spec-e4m3-default", "lmul-spec-bf16-default", "fpmul-ref-e4m3", "fpadd-ref-e4m3",
                "fpcvt-ref-bf16-e4m3")


def _installed_solvers():
    from lutforge.formal.engines import SOLVERS
    from lutforge.support.errors import ToolError
    from lutforge.support.toolchain import tool
    found = []
    for name, (command, package) in SOLVERS.items():
        try:
            tool(command, package)
        except ToolError:
            continue
        found.append(name)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--select", default="all",
                        help="fast, all, small (formats of at most 8 bits), wide (16 bits and more), none (only the "
                             "campaign), or proof names, comma-separated")
    parser.add_argument("--mutants", type=int, default=40, help="mutants per block (0: skip the campaign)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="processes for the campaign, one block each; above 1 they run alongside the proofs")
    parser.add_argument("--skip", default="", help="comma-separated name fragments of proofs to leave out")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per proof (default: each proof's own)")
    parser.add_argument("--json", default="out/bench/prove_times.json", metavar="PATH")
    parser.add_argument("--plot", default="out/bench/prove_times.png", metavar="PATH")
    args = parser.parse_args(argv)

    from lutforge.formal.suite import proofs
    registered = proofs()
    if args.select == "all":
        selected = list(registered.values())
    elif args.select == "none":
        selected = []
    elif args.select == "fast":
        selected = [p for p in registered.values() if p.fast]
    elif args.select in ("small", "wide"):
        wide = lambda name: any(f in name for f in WIDE_FORMATS)
        selected = [p for n, p in registered.items() if wide(n) == (args.select == "wide")]
    else:
        names = args.select.split(",")
        unknown = [n for n in names if n not in registered]
        if unknown:
            raise SystemExit(f"prove_times: no proof named {', '.join(unknown)}; see `lutforge prove --list`.")
        selected = [registered[n] for n in names]

    skip = [part for part in args.skip.split(",") if part]
    selected = [p for p in selected if not any(part in p.name for part in skip)]
    report = {"proofs": {}, "engines": {}, "mutants": {}}
    # Blocks are independent: with --jobs above 1 their campaigns start first, in other processes.
    pool = ProcessPoolExecutor(args.jobs) if args.mutants and args.jobs > 1 else None
    pending = _start_campaign(pool, args.mutants) if pool else None
    for proof in selected:
        result = proof.run(cache=False, timeout=args.timeout)
        report["proofs"][result.name] = {"status": result.status, "seconds": round(result.seconds, 2),
                                         "engine": result.engine, "detail": result.detail}
        print(f"{result.name:32s} {result.status:12s} {result.engine:10s} {result.seconds:7.1f} s", flush=True)

    # Written after each part, so a run stopped during the campaign keeps its proof times.
    _write(report, args)
    print("\nPer engine (combinational proofs):")
    for name in ENGINE_CASES:
        if name not in report["proofs"]:
            continue
        proof = registered[name]
        row = {}
        runs = [("sat", "yices")] + [("sby", solver) for solver in _installed_solvers()]
        for engine, solver in runs:
            result = proof.run(cache=False, engine=engine, solver=solver, timeout=args.timeout)
            row[result.engine] = {"status": result.status, "seconds": round(result.seconds, 2)}
        report["engines"][name] = row
        print(f"  {name:30s} " + "  ".join(f"{e}: {v['status']} {v['seconds']:.1f} s" for e, v in row.items()),
              flush=True)

    _write(report, args)
    if args.mutants:
        report["mutants"] = _finish_campaign(pending or _start_campaign(None, args.mutants))
        if pool:
            pool.shutdown()

    statuses = [v["status"] for v in report["proofs"].values()]
    print(f"\nProofs: {statuses.count('PASS')} PASS, {statuses.count('FAIL')} FAIL, "
          f"{statuses.count('INCONCLUSIVE')} INCONCLUSIVE; "
          f"{sum(v['seconds'] for v in report['proofs'].values()):.0f} s in all.")
    _write(report, args)
    return 0


def _write(report: dict, args):
    from lutforge.cli.common import write_json
    write_json(args.json, report)
    if args.plot and report["proofs"]:
        _plot(report, Path(args.plot))


def _block_campaign(name: str, count: int) -> dict:
    from lutforge.formal.campaign import mutation_campaign, mutation_targets
    return mutation_campaign(mutation_targets()[name], count=count, cache=False).summary()


def _start_campaign(pool: "ProcessPoolExecutor | None", count: int) -> dict:
    """Each mutation target's campaign: futures in ``pool``, or thunks run in this process."""
    from lutforge.formal.campaign import mutation_targets
    if pool is None:
        return {name: (lambda n=name: _block_campaign(n, count)) for name in mutation_targets()}
    return {name: pool.submit(_block_campaign, name, count).result for name in mutation_targets()}


def _finish_campaign(pending: dict) -> dict:
    """Every block's campaign summary, and the totals over all blocks (``mutation_totals``)."""
    from lutforge.formal.campaign import mutation_totals
    per_block = {}
    for name, result in pending.items():
        summary = per_block[name] = result()
        print(f"  mutants {name:28s} total {summary['total']:3d}  proofs {summary['killed_by_proofs']:3d}  "
              f"tests {summary['killed_by_tests']:3d}  equivalent {summary['equivalent']:2d}  "
              f"inconclusive {summary['inconclusive']:2d}  proof score {summary['proof_score_injected']:.1%} "
              f"of injected  replayed {summary['counterexamples_replayed']}  {summary['seconds']:.0f} s", flush=True)
    totals = mutation_totals(per_block)
    total = totals["total"]
    print(f"\nMutants: {total} injected, {totals['equivalent']} equivalent; proofs kill "
          f"{totals['killed_by_proofs']} ({totals['proof_score_injected']:.1%} of injected, "
          f"{totals['proof_score']:.1%} of non-equivalent), tests kill {totals['killed_by_tests']} "
          f"({totals['test_score_injected']:.1%} of injected); {totals['counterexamples_replayed']} "
          f"counterexamples replayed on Verilator; screened out before injection: {totals['screened']}.")
    return totals


def _plot(report, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(report["proofs"])
    seconds = [report["proofs"][n]["seconds"] for n in names]
    colours = {"PASS": "tab:green", "FAIL": "tab:red", "INCONCLUSIVE": "tab:orange"}
    fig, ax = plt.subplots(figsize=(8, max(3, 0.16 * len(names))))
    ax.barh(names, seconds, color=[colours[report["proofs"][n]["status"]] for n in names])
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log)")
    ax.tick_params(axis="y", labelsize=5)
    ax.set_title("lutforge proofs: green PASS, red FAIL, orange INCONCLUSIVE")
    ax.invert_yaxis()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    print(f"Wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
