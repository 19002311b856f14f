"""Fan-out work: one interface over a local process pool and a Ray cluster.

A task is a top-level (picklable) function called on one item; tasks are pure functions of their
inputs that keep their results in lutforge's content-hashed caches, so running one twice (a retry,
or a second executor) recomputes or rereads the same bits. :func:`get_executor` names the engine,
as cocotb's ``get_runner`` names a simulator:

* ``local`` (the default, nothing to install): a process pool of ``workers`` on this machine; one
  worker runs the tasks in this process, in order;
* ``ray``: tasks on a Ray cluster (``address``: a running cluster such as ``ray://head:10001`` or
  ``auto``; none starts a cluster of this machine's cores), ``workers`` tasks at a time.

A task that raises, or whose worker dies, is run again up to ``retries`` times and each retry is
recorded; one that still fails stops the map with :class:`TaskError` naming it. Nothing is dropped:
``map`` returns one result per item, in the items' order, whichever executor ran them.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .errors import LutforgeError, UsageError
from .progress import progress

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "TaskError", "Retry", "MapTiming", "EXECUTORS", "get_executor"]


class TaskError(LutforgeError, RuntimeError):
    """A task failed on every attempt."""


@dataclass(frozen=True)
class Retry:
    """One failed attempt that was run again."""
    task: str
    attempt: int
    error: str


@dataclass(frozen=True)
class MapTiming:
    """How long one :meth:`Executor.map` took: its wall time and each task's own time (measured in
    the worker, from the call to the return of its last successful attempt), from which the time
    on more workers can be estimated."""
    desc: str
    workers: int
    wall_s: float
    task_s: tuple[float, ...]

    @property
    def mean_s(self) -> float:
        return sum(self.task_s) / len(self.task_s)

    def line(self, executor: str) -> str:
        return (f"{self.desc}: {len(self.task_s)} tasks on {self.workers} {executor} workers in {self.wall_s:.1f} s; "
                f"each task {self.mean_s:.1f} s on average, {max(self.task_s):.1f} s at most, "
                f"{sum(self.task_s):.1f} s in all.")


def _timed(fn_and_item):
    """Runs one task and says how long it took, where it ran."""
    fn, item = fn_and_item
    start = time.perf_counter()
    result = fn(item)
    return result, time.perf_counter() - start


@dataclass
class Executor(ABC):
    """Runs ``fn(item)`` for many items (module docstring)."""
    workers: int = 1
    retries: int = 2
    retried: list[Retry] = field(default_factory=list)
    timings: list[MapTiming] = field(default_factory=list)
    name = "abstract"

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, labels: "Sequence[str] | None" = None,
            desc: str = "tasks") -> list:
        """``[fn(item) for item in items]`` on this executor; ``labels`` name the tasks in errors. The
        map's wall time and its tasks' times are kept in :attr:`timings`."""
        items = list(items)
        labels = [str(label) for label in labels] if labels is not None else [repr(item)[:60] for item in items]
        if not items:
            return []
        start = time.perf_counter()
        with progress(total=len(items), desc=f"{desc} ({self.name}, {self.workers} workers)", unit="task") as bar:
            timed = self._map(_timed, [(fn, item) for item in items], labels, bar)
        self.timings.append(MapTiming(desc, self.workers, time.perf_counter() - start, tuple(t for _, t in timed)))
        return [result for result, _ in timed]

    def timing_lines(self) -> list[str]:
        """One line per map run so far (:meth:`MapTiming.line`)."""
        return [t.line(self.name) for t in self.timings]

    @abstractmethod
    def _map(self, fn, items: list, labels: list[str], bar) -> list: ...

    def _failed(self, label: str, attempt: int, error: BaseException | str) -> None:
        """Record a failed attempt: a retry while attempts are left, else the end of the map."""
        text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
        if attempt > self.retries:
            raise TaskError(f"Task {label} failed on all {attempt} attempts ({self.name} executor); the last "
                            f"error: {text.splitlines()[0] if text else 'none given'}. Fix its cause and run again: "
                            f"finished tasks are cached.")
        self.retried.append(Retry(label, attempt, text.splitlines()[0] if text else ""))


@dataclass
class LocalExecutor(Executor):
    """A process pool on this machine; one worker runs in this process."""
    name = "local"

    def _map(self, fn, items, labels, bar):
        if self.workers == 1:
            results = []
            for item, label in zip(items, labels):
                attempt = 1
                while True:
                    try:
                        results.append(fn(item))
                        break
                    except LutforgeError:
                        raise  # a user's error: the same on every attempt
                    except Exception as error:  # noqa: BLE001 - reported and retried, never lost
                        self._failed(label, attempt, error)
                        attempt += 1
                bar.update()
            return results
        results: dict[int, Any] = {}
        attempts = {i: 1 for i in range(len(items))}
        pending = list(range(len(items)))
        while pending:
            # A worker that dies breaks the whole pool: the tasks it held are submitted again to a new one.
            # spawn, not fork: a forked torch or thread pool can hang in the child.
            with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(fn, items[i]): i for i in pending}
                pending = []
                waiting = set(futures)
                while waiting:
                    done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                    for future in done:
                        i = futures[future]
                        try:
                            results[i] = future.result()
                            bar.update()
                        except BrokenProcessPool:
                            self._failed(labels[i], attempts[i], "its worker process died")
                            attempts[i] += 1
                            pending.append(i)
                        except LutforgeError:
                            raise
                        except Exception as error:  # noqa: BLE001
                            self._failed(labels[i], attempts[i], error)
                            attempts[i] += 1
                            pending.append(i)
        return [results[i] for i in range(len(items))]


@dataclass
class RayExecutor(Executor):
    """Tasks on a Ray cluster (module docstring)."""
    address: "str | None" = None
    name = "ray"

    def _map(self, fn, items, labels, bar):
        ray = _import_ray()
        if not ray.is_initialized():
            ray.init(address=self.address, num_cpus=None if self.address else self.workers,
                     include_dashboard=False, log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": {k: v for k, v in os.environ.items() if k.startswith("LUTFORGE_")}})
        # Retries are ours, not Ray's, so that each is recorded whatever failed: the task, its
        # worker or its node.
        remote = ray.remote(max_retries=0, num_cpus=1)(fn)
        results: dict[int, Any] = {}
        attempts = {i: 1 for i in range(len(items))}
        refs = {}

        def submit(i):
            refs[remote.remote(items[i])] = i

        queue = list(range(len(items)))
        while queue or refs:
            while queue and len(refs) < self.workers:
                submit(queue.pop(0))
            done, _ = ray.wait(list(refs), num_returns=1)
            i = refs.pop(done[0])
            try:
                results[i] = ray.get(done[0])
                bar.update()
            except ray.exceptions.RayTaskError as error:
                cause = error.as_instanceof_cause() if hasattr(error, "as_instanceof_cause") else error
                if isinstance(cause, LutforgeError):
                    raise cause from None
                self._failed(labels[i], attempts[i], cause)
                attempts[i] += 1
                queue.append(i)
            except ray.exceptions.RayError as error:  # the worker or its node died
                self._failed(labels[i], attempts[i], error)
                attempts[i] += 1
                queue.append(i)
        return [results[i] for i in range(len(items))]


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError("The ray executor needs Ray, which is not installed; install it with "
                         "`pip install 'lutforge[scale]'`, or use --executor local.") from None
    return ray


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def get_executor(name: str = "local", *, workers: "int | None" = None, address: "str | None" = None,
                 retries: int = 2) -> Executor:
    """The executor ``name`` with ``workers`` tasks at a time (default: this machine's cores)."""
    if name not in EXECUTORS:
        raise UsageError(f"Executor {name!r} is not known; use one of {', '.join(EXECUTORS)}.")
    if address is not None and name != "ray":
        raise UsageError(f"--address {address} names a Ray cluster, but the executor is {name!r}; give "
                         f"--executor ray, or leave the address out.")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise UsageError(f"{workers!r} workers cannot run anything; give 1 or more.")
    if name == "ray":
        return RayExecutor(workers=workers, retries=retries, address=address)
    return LocalExecutor(workers=workers, retries=retries)
