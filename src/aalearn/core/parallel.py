"""aalearn's single parallel-execution layer: independent tasks, in-process or on Dask.

Every parallel job in aalearn (jet generation, later scans and ensembles) goes through
:func:`map_tasks`. It applies a function to a list of items and yields ``(item, result)``
pairs **as the tasks complete** (not in input order):

* ``workers == 1`` and no ``scheduler``: the tasks run sequentially in this process,
  with no Dask import and no start-up cost.
* ``workers > 1`` and no ``scheduler``: a :class:`distributed.LocalCluster` with
  ``workers`` single-threaded worker *processes* is started for the call and shut down
  afterwards (about 1 s of start-up on a laptop). Worker logs are silenced below
  WARNING, no dashboard is opened, and the workers' profiler and fast system monitor
  are off (:data:`LOCAL_CLUSTER_CONFIG`: they take CPU from CPU-bound tasks).
* ``scheduler="tcp://host:8786"``: the tasks are sent to an existing Dask scheduler
  (``dask scheduler`` + ``dask worker`` on several machines, or a batch-system cluster);
  ``workers`` is then ignored, the cluster decides. An unreachable address raises
  :class:`SchedulerUnreachableError` after ``connect_timeout`` seconds.

Batch systems through dask-jobqueue (``pip install dask-jobqueue``; not an aalearn
dependency): start the cluster yourself and pass its scheduler address::

    from dask_jobqueue import HTCondorCluster      # or SLURMCluster, PBSCluster, ...
    cluster = HTCondorCluster(cores=1, memory="2GB", disk="1GB")
    cluster.scale(jobs=50)
    results = list(map_tasks(fn, items, scheduler=cluster.scheduler_address))

(the CLI equivalent is ``--scheduler tcp://...``). The workers must be able to import
aalearn and the function, and the function, its items and its results must be
serialisable (Dask uses cloudpickle for transport; aalearn never stores pickles).
Worker processes of a :class:`~distributed.LocalCluster` are *spawned*, so a script
that calls :func:`map_tasks` with ``workers > 1`` needs the usual
``if __name__ == "__main__":`` guard.

Example:
    >>> from aalearn.core.parallel import map_tasks
    >>> sorted(r for _, r in map_tasks(abs, [-2, 1, -3]))
    [1, 2, 3]

References:
    Dask Development Team, "Dask: Library for dynamic task scheduling" (2016),
    https://dask.org; distributed: https://distributed.dask.org.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from aalearn.core.optional import require

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "LOCAL_CLUSTER_CONFIG",
    "SchedulerUnreachableError",
    "dask_client",
    "map_tasks",
    "validate_scheduler_address",
]

T = TypeVar("T")
R = TypeVar("R")

#: Seconds to wait for an external Dask scheduler before giving up.
DEFAULT_CONNECT_TIMEOUT: float = 10.0

#: Dask settings of aalearn's local clusters. The tasks (Pythia event generation) are
#: long and CPU-bound, so the diagnostics that Dask runs in every worker by default cost
#: CPU for nothing: the statistical profiler samples every thread's stack every 10 ms, the
#: system monitor polls every 0.5 s (and, with gilknocker installed, the GIL every 1 ms).
#: On a 2-core machine every such cycle is taken from a worker.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.gil.enabled": False,
}

_SCHEMES = ("tcp://", "tls://", "ucx://", "inproc://", "ws://", "wss://")


class SchedulerUnreachableError(ConnectionError):
    """The Dask scheduler address given by the user could not be reached in time."""


def validate_scheduler_address(scheduler: str) -> str:
    """Check that ``scheduler`` looks like a Dask scheduler address (``tcp://host:port``).

    Args:
        scheduler: Address such as ``"tcp://10.0.0.5:8786"``.

    Returns:
        The stripped address.

    Raises:
        ValueError: If it is not a string with a known Dask scheme.

    Example:
        >>> validate_scheduler_address(" tcp://127.0.0.1:8786 ")
        'tcp://127.0.0.1:8786'
    """
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ValueError(f"scheduler must be an address such as 'tcp://host:8786', got {scheduler!r}")
    address = scheduler.strip()
    if not address.startswith(_SCHEMES):
        raise ValueError(
            f"scheduler address {address!r} has no known scheme; use for example 'tcp://host:8786' "
            f"(supported: {', '.join(s.rstrip(':/') for s in _SCHEMES)})"
        )
    return address


def _check_workers(workers: int) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    return workers


@contextlib.contextmanager
def _quiet_loggers(level: int = logging.WARNING) -> Iterator[None]:
    """Raise Dask's loggers in this process to ``level`` for a while (restored afterwards)."""
    loggers = [logging.getLogger(name) for name in ("distributed", "bokeh", "tornado")]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        if lg.getEffectiveLevel() < level:
            lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, saved, strict=True):
            lg.setLevel(old)


@contextlib.contextmanager
def dask_client(
    workers: int = 1,
    scheduler: str | None = None,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> Iterator[Any]:
    """A :class:`distributed.Client` on a fresh local cluster or an existing scheduler.

    The local cluster (``scheduler is None``) has ``workers`` worker processes with one
    thread each, no dashboard and worker logs at WARNING; it is closed on exit. With a
    ``scheduler`` address only the client is closed on exit; the cluster keeps running.

    Args:
        workers: Number of local worker processes (ignored with ``scheduler``).
        scheduler: Address of a running Dask scheduler, for example ``"tcp://host:8786"``
            or ``cluster.scheduler_address`` of a dask-jobqueue cluster.
        connect_timeout: Seconds to wait for ``scheduler``.

    Yields:
        The connected client.

    Raises:
        SchedulerUnreachableError: If ``scheduler`` does not answer in time.
        ValueError: For invalid ``workers`` or ``scheduler`` arguments.

    Example:
        >>> with dask_client(workers=2) as client:  # doctest: +SKIP
        ...     client.submit(abs, -1).result()
        1
    """
    _check_workers(workers)
    if connect_timeout <= 0:
        raise ValueError(f"connect_timeout must be positive, got {connect_timeout}")
    distributed = require("distributed", purpose="parallel execution with Dask")
    with _quiet_loggers():
        if scheduler is not None:
            address = validate_scheduler_address(scheduler)
            client = _connect(distributed, address, connect_timeout)
            try:
                yield client
            finally:
                client.close()
            return
        dask = require("dask", purpose="parallel execution with Dask")
        # the workers inherit this configuration from their nanny (spawned processes)
        with dask.config.set(LOCAL_CLUSTER_CONFIG):
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                silence_logs=logging.WARNING,
                dashboard_address=None,
            )
        try:
            client = distributed.Client(cluster, set_as_default=False)
            try:
                yield client
            finally:
                client.close()
        finally:
            cluster.close()


def _connect(distributed: Any, address: str, connect_timeout: float) -> Any:
    try:
        return distributed.Client(address, timeout=f"{connect_timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachableError(
            f"could not reach the Dask scheduler at {address} within {connect_timeout:g} s ({exc}); "
            "check that the scheduler is running and reachable, or drop the scheduler address to "
            "run on local worker processes"
        ) from exc


def map_tasks(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int = 1,
    scheduler: str | None = None,
    on_result: Callable[[T, R], None] | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> Iterator[tuple[T, R]]:
    """Apply ``fn`` to every item, yielding ``(item, result)`` as the tasks complete.

    The arguments are validated immediately; the work starts when the returned iterator
    is first advanced. The first failing task raises its exception in the caller and
    cancels the remaining ones. Closing the iterator early (``break``) also cancels the
    outstanding tasks and shuts a local cluster down.

    Args:
        fn: Function of one argument. With Dask it must be importable by the workers
            (a module-level function or a :func:`functools.partial` of one).
        items: The inputs; each becomes one task.
        workers: Worker processes (1 = sequential in this process, no Dask).
        scheduler: Address of an existing Dask scheduler (``"tcp://host:8786"``);
            ``workers`` is then ignored.
        on_result: Called as ``on_result(item, result)`` for every completed task,
            before it is yielded (for progress bars or incremental saving).
        connect_timeout: Seconds to wait for ``scheduler``.

    Returns:
        An iterator over ``(item, result)`` pairs in completion order.

    Raises:
        ValueError: For ``workers < 1`` or a malformed scheduler address.
        SchedulerUnreachableError: If ``scheduler`` does not answer in time (raised when
            the iterator is first advanced).

    Example:
        >>> dict(map_tasks(len, ["ab", "c"]))
        {'ab': 2, 'c': 1}
    """
    _check_workers(workers)
    if scheduler is not None:
        scheduler = validate_scheduler_address(scheduler)
    item_list = list(items)
    if workers == 1 and scheduler is None:
        return _map_sequential(fn, item_list, on_result)
    return _map_dask(fn, item_list, workers, scheduler, on_result, connect_timeout)


def _map_sequential(
    fn: Callable[[T], R], items: list[T], on_result: Callable[[T, R], None] | None
) -> Iterator[tuple[T, R]]:
    for item in items:
        result = fn(item)
        if on_result is not None:
            on_result(item, result)
        yield item, result


def _map_dask(
    fn: Callable[[T], R],
    items: list[T],
    workers: int,
    scheduler: str | None,
    on_result: Callable[[T, R], None] | None,
    connect_timeout: float,
) -> Iterator[tuple[T, R]]:
    if not items:
        return
    distributed = require("distributed", purpose="parallel execution with Dask")
    with dask_client(workers, scheduler, connect_timeout=connect_timeout) as client:
        futures = {client.submit(fn, item, pure=False): k for k, item in enumerate(items)}
        try:
            for future in distributed.as_completed(list(futures), loop=client.loop):
                result = future.result()
                item = items[futures[future]]
                if on_result is not None:
                    on_result(item, result)
                yield item, result
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                client.cancel(pending)
