"""``lutforge prove``: formal equivalence proofs of a catalogue block or of the registered proofs,
optionally with the fault-injection campaign over them."""

import json

from ..formal.engines import SOLVERS
from ..support.errors import UsageError
from .common import check_writable, parse_assignments, write_json

__all__ = ["register"]


def cmd_prove(args) -> int:
    from ..formal.campaign import mutation_summaries, mutation_totals
    from ..formal.results import ProveReport
    from ..formal.suite import block_proof, proofs, run_proofs
    registered = proofs()
    if args.list:
        for name, proof in registered.items():
            print(f"{name:28s} {'fast' if proof.fast else 'slow'}  {proof.summary}")
        return 0
    if args.mutants < 0:
        raise UsageError(f"--mutants {args.mutants} is negative; give 0 (no campaign) or more faults per proof.")
    check_writable(args.json)
    if args.all or args.fast:
        selected = [p for p in registered.values() if p.fast or not args.fast]
    elif args.block is None:
        raise UsageError("Name a catalogue block or a registered proof to prove, or pass --all, --fast or "
                         "--list; `lutforge prove --list` shows the proof names.")
    elif args.block in registered:
        if args.param:
            raise UsageError(f"{args.block} is a registered proof, which takes no NAME=VALUE parameters "
                             f"({' '.join(args.param)}); name a catalogue block to prove it with parameters.")
        selected = [registered[args.block]]
    else:
        selected = [block_proof(args.block, parse_assignments(args.param, "NAME=VALUE"))]
    results = run_proofs(selected, cache=not args.no_cache, solver=args.solver, timeout=args.timeout)
    for r in results:
        print(r)
    totals = None
    if args.mutants:
        per_block = {}
        for name, summary in mutation_summaries([p.name for p in selected], count=args.mutants,
                                                cache=not args.no_cache):
            per_block[name] = summary
            print(f"{name}: mutants {json.dumps(summary)}")
        totals = mutation_totals(per_block)
        print(f"mutants: {totals['killed_by_proofs']} of {totals['total']} injected killed by the proofs, "
              f"{totals['killed_by_tests']} by the tests, {totals['equivalent']} equivalent")
    report = ProveReport(tuple(results), totals)
    write_json(args.json, report)
    return 0 if report.passed else 1


def register(sub) -> None:
    p = sub.add_parser("prove", help="prove a block equivalent to its reference or combinational form")
    p.add_argument("block", nargs="?", help="catalogue block (lmul ...) or registered proof name (see --list)")
    p.add_argument("param", nargs="*", metavar="NAME=VALUE", help="block parameters")
    p.add_argument("--list", action="store_true", help="list the registered proofs")
    p.add_argument("--all", action="store_true", help="run every registered proof (make prove-all)")
    p.add_argument("--fast", action="store_true", help="run the fast proofs (make test)")
    p.add_argument("--solver", default="yices", choices=tuple(SOLVERS), help="SMT solver for sby")
    p.add_argument("--timeout", type=float, default=None, help="seconds per proof before INCONCLUSIVE")
    p.add_argument("--mutants", type=int, default=0, metavar="N", help="also run N injected faults per proof")
    p.add_argument("--no-cache", action="store_true", help="ignore cached proof results")
    p.add_argument("--json", metavar="PATH", help="write results as JSON")
    p.set_defaults(func=cmd_prove)
