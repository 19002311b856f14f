"""``lutforge explore SPACE.yaml``: quality x speed x area of every point of a design space, its
Pareto fronts, and a configuration file for each front point."""

from pathlib import Path

from .common import (add_device_argument, add_executor_arguments, check_folder, check_writable, device_from,
                     executor_from, number, print_timings, write_json)

__all__ = ["register"]


def cmd_explore(args) -> int:
    from ..jobs.explore import explore
    from ..jobs.explore_report import markdown, write_report
    from ..jobs.explore_space import load_space

    check_writable(args.json)
    check_folder(args.out, "--out")
    space = load_space(args.space)
    executor = executor_from(args)
    result = explore(space, executor, threads=args.threads, device=device_from(args))
    out = Path(args.out or Path("out") / "explore" / space.name)
    paths = write_report(result, out)
    write_json(args.json, result)
    print(markdown(result))
    print(f"\nTable {paths['table']}, plots {paths['speed']} and {paths['area']}, "
          f"configurations of the {len(set(result.pareto + result.pareto_area))} Pareto points in {paths['configs']}.")
    print_timings(executor)
    return 0


def register(sub) -> None:
    p = sub.add_parser("explore", help="sweep a design space (quantization x core x target): perplexity, "
                                       "tokens/s, area and fit of each point, and its Pareto fronts")
    p.add_argument("space", help="the space file (see configs/explore-small.yaml)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder of the table, plots and front configurations (default out/explore/SPACE)")
    p.add_argument("--json", default=None, metavar="PATH", help="write every point and the fronts as JSON")
    p.add_argument("--threads", type=number(int, 1, 256), default=2,
                   help="torch threads of each quality task (default 2)")
    add_device_argument(p, "cpu", "the model's own operations in the quality tasks")
    add_executor_arguments(p)
    p.set_defaults(func=cmd_explore)
