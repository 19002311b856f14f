"""The executor layer: the same results in the same order whichever executor and however many
workers ran the tasks; failures and dead workers retried and recorded; a task that never succeeds
stops the map with its name."""

import pytest

import example_tasks
from lutforge.support.errors import UsageError
from lutforge.support.executor import LocalExecutor, TaskError, get_executor

ITEMS = list(range(7))


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    # The tasks' module is not installed: Ray's workers get it by value.
    ray.cloudpickle.register_pickle_by_value(example_tasks)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize("workers", [1, 2])
def test_local_results_are_in_order_and_equal_to_a_plain_loop(workers):
    assert get_executor("local", workers=workers).map(example_tasks.square, ITEMS) == [i * i for i in ITEMS]


@pytest.mark.parametrize("workers", [1, 2])
def test_each_map_keeps_its_wall_time_and_every_tasks_own_time(workers):
    executor = get_executor("local", workers=workers)
    naps = [0.05, 0.2, 0.05]
    assert executor.map(example_tasks.slow_square, [(nap, n) for n, nap in enumerate(naps)], desc="naps") == [
        (0, "head"), (1, "head"), (4, "head")]
    executor.map(example_tasks.square, ITEMS, desc="squares")
    naps_timing, squares_timing = executor.timings
    assert (naps_timing.desc, naps_timing.workers, len(naps_timing.task_s)) == ("naps", workers, 3)
    # Each task's own time holds at least its nap, and the map's wall time at least its longest task.
    assert all(t >= nap for t, nap in zip(naps_timing.task_s, naps))
    assert naps_timing.wall_s >= max(naps_timing.task_s)
    assert len(squares_timing.task_s) == len(ITEMS)
    line = executor.timing_lines()[0]
    assert line.startswith(f"naps: 3 tasks on {workers} local workers in ") and " s at most, " in line


def test_ray_results_equal_the_local_executors(ray_local):
    executor = get_executor("ray", workers=2)
    assert executor.map(example_tasks.square, ITEMS) == LocalExecutor(workers=2).map(example_tasks.square, ITEMS)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_task_is_retried_and_recorded(tmp_path, workers):
    executor = get_executor("local", workers=workers)
    assert executor.map(example_tasks.fails_once, [(str(tmp_path), n) for n in (2, 3)], labels=["two", "three"]) == [4, 9]
    assert sorted((r.task, r.attempt) for r in executor.retried) == [("three", 1), ("two", 1)]
    assert all(r.error.startswith("RuntimeError: first attempt at") for r in executor.retried)


def test_a_dead_worker_is_replaced_and_its_task_run_again(tmp_path):
    executor = get_executor("local", workers=2)
    assert executor.map(example_tasks.dies_once, [(str(tmp_path), 5)], labels=["five"]) == [25]
    assert [(r.task, r.attempt, r.error) for r in executor.retried] == [("five", 1, "its worker process died")]


def test_ray_retries_a_failed_task_and_a_dead_worker(tmp_path, ray_local):
    executor = get_executor("ray", workers=2)
    assert executor.map(example_tasks.fails_once, [(str(tmp_path), 4)], labels=["four"]) == [16]
    assert executor.map(example_tasks.dies_once, [(str(tmp_path), 6)], labels=["six"]) == [36]
    assert [(r.task, r.attempt) for r in executor.retried] == [("four", 1), ("six", 1)]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_task_that_always_fails_stops_the_map_naming_it(workers):
    with pytest.raises(TaskError, match=r"Task bad-input failed on all 3 attempts \(local executor\); the last "
                                        r"error: RuntimeError: broken input 9\. Fix its cause"):
        get_executor("local", workers=workers, retries=2).map(example_tasks.always_fails, [9], labels=["bad-input"])


def test_bad_executor_arguments_are_refused_with_the_fix():
    with pytest.raises(UsageError, match=r"Executor 'dask' is not known; use one of local, ray\."):
        get_executor("dask")
    with pytest.raises(UsageError, match=r"--address ray://head:10001 names a Ray cluster, but the executor is "
                                         r"'local'; give --executor ray"):
        get_executor("local", address="ray://head:10001")
    with pytest.raises(UsageError, match=r"0 workers cannot run anything; give 1 or more\."):
        get_executor("local", workers=0)


def test_proofs_and_campaigns_give_the_same_results_on_every_executor(ray_local):
    """What `lutforge prove --executor ...` runs: the same results whichever executor ran them."""
    from lutforge.formal.campaign import mutation_summaries
    from lutforge.formal.suite import proofs, run_proofs
    selected = [proofs()[name] for name in ("lmul-spec-e4m3-default", "fpstream-mul-ref-e5m2", "kvwriter-ref-e5m2-d4-l2")]

    def outcome(executor):
        return [(r.name, r.status, r.engine, r.detail) for r in run_proofs(selected, executor=executor)]

    one = outcome(LocalExecutor(workers=1))
    assert [status for _, status, _, _ in one] == ["PASS"] * 3
    assert outcome(LocalExecutor(workers=2)) == one == outcome(get_executor("ray", workers=2))
    def campaign(executor):
        return _untimed(mutation_summaries(["lmul-spec-e2m1-default"], count=4, executor=executor))

    local = campaign(LocalExecutor(workers=2))
    assert local == campaign(get_executor("ray", workers=2))
    assert local[0][1]["total"] == 4


def _untimed(value):
    """``value`` without its ``seconds`` entries (wall time, the one thing that differs)."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, (list, tuple)):
        return [_untimed(v) for v in value]
    return value
