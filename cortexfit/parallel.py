"""Independent jobs on Dask: a settings search (``[tune]``), later sweeps and repeats.

One engine for every set of independent fits (:func:`dask_client` and :func:`run_jobs`):

* **Where they run.** Without a scheduler address, a :class:`distributed.LocalCluster` on
  this machine: one worker process per core, one thread each, numba (and BLAS) limited to
  one thread per worker, so that the workers share the cores instead of fighting over them.
  Numba's compiled kernels are cached beside the package, so workers load them instead of
  compiling. With an address (``tcp://host:8786``) the same jobs go to that running
  scheduler unchanged: its workers need cortexfit installed (and, for a run, read access
  to the recording is not needed: the targets are sent to them).
* **What a job is.** A module-level function and a dict of plain arguments (picklable), plus
  arguments shared by every job (sent once, :meth:`distributed.Client.scatter`).
* **What comes back.** One :class:`Outcome` per job, in the order given: its result, or the
  error it raised (its type and message; the other jobs' results are kept).
* **Resuming.** With ``store`` (a folder), every finished job's result is written there as it
  finishes (JSON, atomically, named by the job's key); a rerun reads those back and runs
  only the missing jobs, so an interrupted search loses at most the jobs that were running.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .atomic import write_text
from .exceptions import ConfigError

__all__ = ["WORKER_ENV", "Outcome", "dask_client", "local_workers", "run_jobs"]

#: the environment of a local worker process: one thread for numba, BLAS and OpenMP
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}


def local_workers(n_workers: int | None = None) -> int:
    """Workers of a local cluster: ``n_workers``, else one per core this process may use."""
    if n_workers:
        return int(n_workers)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None, *,
                field: str = "scheduler", timeout: float = 15.0) -> Iterator[Any]:
    """A :class:`distributed.Client`: of the running scheduler at ``scheduler``
    (``tcp://host:port``), else of a new local cluster of ``n_workers`` processes (default
    one per core) with one thread each, closed on exit. ``field`` names the setting in
    errors (e.g. ``tune.scheduler``); ``timeout``: seconds to reach the scheduler."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{timeout:g}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                "cannot connect to the Dask scheduler", field=field, found=f"{scheduler!r}: "
                f"{type(exc).__name__}: {exc}",
                expected="the address of a running dask scheduler, e.g. tcp://host:8786",
                hint="Start one with `dask scheduler` (and workers with `dask worker "
                     "ADDRESS`), or leave the address empty for a local cluster") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = local_workers(n_workers)
    try:
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR,
                               env=dict(WORKER_ENV))
    except (RuntimeError, OSError) as exc:
        raise ConfigError(
            "could not start a local Dask cluster", field=field,
            found=f"{type(exc).__name__}: {exc}",
            expected=f"{n} worker processes started",
            hint="In a Python script, call the run under `if __name__ == \"__main__\":` "
                 "(worker processes are started with spawn and import the script again); "
                 "else name a running scheduler") from None
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


@dataclass
class Outcome:
    """One job's end: ``result`` (a dict) or ``error`` (its type and message)."""

    key: str
    result: dict[str, Any] | None = None
    error: str | None = None
    reused: bool = False  # read back from the store, not run again

    @property
    def ok(self) -> bool:
        return self.error is None


def _stored(store: Path | None, key: str) -> dict[str, Any] | None:
    if store is None:
        return None
    path = store / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == key else None


def run_jobs(client: Any, func: Callable[..., dict[str, Any]], jobs: list[dict[str, Any]],
             keys: list[str], *, shared: dict[str, Any] | None = None,
             store: str | os.PathLike | None = None, desc: str = "jobs",
             progress: bool = True) -> list[Outcome]:
    """Run ``func(**shared, **job)`` for every job on ``client``; one :class:`Outcome` per
    job, in order. ``keys`` name the jobs (unique; with ``store``, a finished job's result
    is kept as ``store/KEY.json`` and a job whose file exists is not run again). A job that
    raises is an outcome with its error; the others go on."""
    from distributed import as_completed

    if len(set(keys)) != len(keys) or len(keys) != len(jobs):
        raise ValueError("run_jobs needs one unique key per job")
    folder = Path(store) if store is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, Outcome] = {}
    todo = []
    for key, job in zip(keys, jobs):
        kept = _stored(folder, key)
        if kept is not None:
            outcomes[key] = Outcome(key, kept.get("result"), kept.get("error"), reused=True)
        else:
            todo.append((key, job))
    if todo:
        common = {}
        if shared:  # sent to the workers once, not with every job
            common = {name: client.scatter(value, broadcast=True, hash=False)
                      for name, value in shared.items()}
        futures = {client.submit(func, **common, **job, key=f"{desc}-{key}", pure=False): key
                   for key, job in todo}
        failed = 0
        with tqdm(total=len(keys), initial=len(keys) - len(todo), desc=desc, unit="job",
                  disable=not progress) as bar:
            for future in as_completed(futures):
                key = futures[future]
                if future.status == "error":
                    exc = future.exception()
                    outcome = Outcome(key, error=f"{type(exc).__name__}: {exc}")
                    failed += 1
                else:
                    outcome = Outcome(key, result=future.result())
                outcomes[key] = outcome
                if folder is not None:  # plain values only (not e.g. a model's bytes)
                    kept = None if outcome.result is None else {
                        k: v for k, v in outcome.result.items()
                        if not isinstance(v, (bytes, bytearray))}
                    write_text(folder / f"{key}.json", json.dumps(
                        {"key": key, "result": kept, "error": outcome.error},
                        default=_plain))
                bar.update()
                bar.set_postfix(running=sum(f.status == "pending" for f in futures),
                                failed=failed)
    return [outcomes[key] for key in keys]


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
