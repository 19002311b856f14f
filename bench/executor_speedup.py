"""Speed-up of `lutforge prove` on the local executor: the same proofs from an empty proof cache
with 1 worker and with N, in one run, and the estimate for a cluster of W workers from the tasks'
own times (the critical path: the longest task, or the total divided by W, whichever is longer).

Usage: python bench/executor_speedup.py [--select fast|all|NAME,...] [--workers 2] [--cluster 64] [--json PATH]

``--json`` writes ``{"tasks", "mean_task_s", "max_task_s", "serial_s", "parallel_s", "workers",
"speedup", "cluster", "cluster_estimate_s", "cluster_speedup_estimate"}``.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--select", default="fast", help="fast, all, or comma-separated proof names")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cluster", type=int, default=64, help="workers of the estimated cluster")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from lutforge.formal.suite import proofs, run_proofs
    from lutforge.support.executor import LocalExecutor
    registered = proofs()
    if args.select == "all":
        selected = list(registered.values())
    elif args.select == "fast":
        selected = [p for p in registered.values() if p.fast]
    else:
        selected = [registered[name] for name in args.select.split(",")]

    times = {}
    for workers in (1, args.workers):
        # An empty cache of its own for each run: every proof is proven, none is read back.
        os.environ["LUTFORGE_CACHE"] = tempfile.mkdtemp(prefix=f"speedup-{workers}-")
        started = time.perf_counter()
        results = run_proofs(selected, cache=True, executor=LocalExecutor(workers=workers))
        times[workers] = (time.perf_counter() - started, results)
    serial, results = times[1]
    parallel = times[args.workers][0]
    task_s = [r.seconds for r in results]
    estimate = max(max(task_s), sum(task_s) / args.cluster)
    report = {"tasks": len(task_s), "mean_task_s": sum(task_s) / len(task_s), "max_task_s": max(task_s),
              "serial_s": serial, "parallel_s": parallel, "workers": args.workers, "speedup": serial / parallel,
              "cluster": args.cluster, "cluster_estimate_s": estimate, "cluster_speedup_estimate": serial / estimate,
              "statuses": sorted({r.status for r in results})}
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
