"""Multi-node, shown: a head and a worker node started with `ray start` on this machine, a sweep
across both, the worker node killed mid-sweep, and every task still completing (retried on the
head, and recorded)."""

import json
import os
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

DRIVER = textwrap.dedent("""
    import json, sys
    import ray
    import example_tasks
    from lutforge.support.executor import get_executor
    ray.cloudpickle.register_pickle_by_value(example_tasks)
    ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)
    executor = get_executor("ray", workers=2, address=sys.argv[1])
    results = executor.map(example_tasks.slow_square, [(3.0, n) for n in range(6)], labels=[f"n{n}" for n in range(6)])
    # A file, not stdout: Ray prints its nodes' log lines (a dead raylet's among them) to the driver's stdout.
    with open(sys.argv[2], "w") as report:
        json.dump({"results": results, "retried": [r.task for r in executor.retried]}, report)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raylets_with(argument: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(b"raylet") and argument.encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def test_a_sweep_survives_its_worker_node_dying():
    ray_cli = str(Path(sys.executable).with_name("ray"))
    port, worker_port = _free_port(), _free_port()
    address = f"127.0.0.1:{port}"
    # A cluster of this machine only: no token authentication (docs/scale-out.md says how a real one sets it).
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    common = ["--num-cpus", "1", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    # A short folder: Ray's socket paths under it must fit the 107 bytes of a Unix socket name.
    temp = tempfile.mkdtemp(prefix="lfray", dir="/tmp")
    markers = Path(temp) / "markers"
    markers.mkdir()
    env["LUTFORGE_TEST_MARKERS"] = str(markers)
    started = subprocess.run([ray_cli, "start", "--head", "--port", str(port), "--include-dashboard", "false",
                              "--temp-dir", temp, *common], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        subprocess.run([ray_cli, "start", "--address", address, "--node-manager-port", str(worker_port), *common],
                       env=dict(env, LUTFORGE_TEST_NODE="worker"), check=True, capture_output=True)
        tests_dir = str(Path(__file__).parents[1])
        report_path = Path(temp) / "report.json"
        driver = subprocess.Popen([sys.executable, "-c", DRIVER, address, str(report_path)],
                                  env=dict(env, PYTHONPATH=os.pathsep.join([tests_dir, env.get("PYTHONPATH", "")])))
        # Kill the worker node as soon as it has begun a task (each naps 3 s), so that it dies
        # holding one, however long the driver takes to start on a busy machine.
        deadline = time.monotonic() + 180
        while not any(m.name.startswith("worker-") for m in markers.iterdir()):
            assert time.monotonic() < deadline and driver.poll() is None, "no task began on the worker node"
            time.sleep(0.05)
        worker = _raylets_with(f"--node_manager_port={worker_port}")
        assert worker, "the worker node's raylet is not running"
        for pid in worker:
            os.kill(pid, signal.SIGKILL)
        assert driver.wait(timeout=240) == 0
        report = json.loads(report_path.read_text())
        assert [value for value, _ in report["results"]] == [n * n for n in range(6)]
        # Something ran on the worker node before it died, and what it held ran again on the head.
        assert report["retried"], report
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True)
        shutil.rmtree(temp, ignore_errors=True)
