"""``lutforge prove``: formal equivalence proofs of a catalogue block or of the registered proofs,
optionally with the fault-injection campaign over them."""

import json

from ..formal.engines import SOLVERS
from ..support.errors import UsageError
from .common import (add_executor_arguments, check_writable, executor_from, number, parse_assignments, print_timings,
                     write_json)

__all__ = ["register"]

# Each injected fault is one more proof (seconds to minutes): 200 per proof is a night's campaign.
MAX_MUTANTS = 200
# A proof that needs more than a day is not going to finish; 0 would report INCONCLUSIVE at once.
MAX_TIMEOUT = 86_400


def _selection(args, registered) -> list:
    """The proofs ``args`` name; a combination in which one option would be ignored is refused."""
    from ..blocks import catalogue
    from ..formal.suite import block_proof
    if args.list and (args.block or args.all or args.fast or args.mutants or args.json):
        raise UsageError("--list only lists the registered proofs; give it alone, or drop it to run proofs.")
    if args.all and args.fast:
        raise UsageError("--all runs every registered proof and --fast the fast ones; give one of them.")
    if args.all or args.fast:
        if args.block:
            raise UsageError(f"--{'all' if args.all else 'fast'} selects registered proofs, so {args.block} "
                             f"would be ignored; name a proof or block, or pass --{'all' if args.all else 'fast'}, "
                             f"not both.")
        return [p for p in registered.values() if p.fast or not args.fast]
    if args.block is None:
        raise UsageError("Name a catalogue block or a registered proof to prove, or pass --all, --fast or "
                         "--list; `lutforge prove --list` shows the proof names.")
    if args.block in registered:
        if args.param:
            raise UsageError(f"{args.block} is a registered proof, which takes no NAME=VALUE parameters "
                             f"({' '.join(args.param)}); name a catalogue block to prove it with parameters.")
        return [registered[args.block]]
    blocks = catalogue()
    if args.block not in blocks:
        raise UsageError(f"{args.block!r} is neither a registered proof nor a catalogue block; the blocks are "
                         f"{', '.join(blocks)}, and `lutforge prove --list` shows the proofs.")
    return [block_proof(args.block, parse_assignments(args.param, "NAME=VALUE"))]


def _check_mutation_targets(selected) -> None:
    """A campaign over proofs without a fault-injection target would inject nothing and pass."""
    from ..formal.campaign import mutation_targets
    targets = mutation_targets()
    if not any(p.name in targets for p in selected):
        names = ", ".join(p.name for p in selected[:3]) + (", ..." if len(selected) > 3 else "")
        raise UsageError(f"--mutants needs a proof with a fault-injection target, and {names} has none; the "
                         f"targets are {', '.join(targets)}.")


def cmd_prove(args) -> int:
    from ..formal.campaign import mutation_summaries, mutation_totals
    from ..formal.results import ProveReport
    from ..formal.suite import proofs, run_proofs
    registered = proofs()
    check_writable(args.json)
    selected = _selection(args, registered)
    if args.list:
        for name, proof in registered.items():
            print(f"{name:28s} {'fast' if proof.fast else 'slow'}  {proof.summary}")
        return 0
    if args.mutants:
        _check_mutation_targets(selected)
    executor = executor_from(args)
    results = run_proofs(selected, cache=not args.no_cache, solver=args.solver, timeout=args.timeout,
                         executor=executor)
    for r in results:
        print(r)
    totals = None
    if args.mutants:
        per_block = {}
        for name, summary in mutation_summaries([p.name for p in selected], count=args.mutants,
                                                cache=not args.no_cache, executor=executor):
            per_block[name] = summary
            print(f"{name}: mutants {json.dumps(summary)}")
        totals = mutation_totals(per_block)
        print(f"mutants: {totals['killed_by_proofs']} of {totals['total']} injected killed by the proofs, "
              f"{totals['killed_by_tests']} by the tests, {totals['equivalent']} equivalent")
    print_timings(executor)
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
    p.add_argument("--timeout", type=number(float, 1, MAX_TIMEOUT), default=None, metavar="SECONDS",
                   help=f"seconds per proof before INCONCLUSIVE, 1 to {MAX_TIMEOUT}")
    p.add_argument("--mutants", type=number(int, 0, MAX_MUTANTS), default=0, metavar="N",
                   help=f"also run N injected faults per proof, 0 to {MAX_MUTANTS}")
    p.add_argument("--no-cache", action="store_true", help="ignore cached proof results")
    p.add_argument("--json", metavar="PATH", help="write results as JSON")
    add_executor_arguments(p)
    p.set_defaults(func=cmd_prove)
