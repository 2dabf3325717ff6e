"""aalearn.core.parallel: sequential path, local Dask cluster, external scheduler errors."""

from __future__ import annotations

import math
import operator
import socket
import time

import pytest

from aalearn.core.parallel import SchedulerUnreachableError, map_tasks, validate_scheduler_address


def test_sequential_runs_in_process_without_dask() -> None:
    calls: list[tuple[int, int]] = []
    results = list(map_tasks(operator.neg, [3, 1, 2], on_result=lambda i, r: calls.append((i, r))))
    assert results == [(3, -3), (1, -1), (2, -2)]  # input order when sequential
    assert calls == results


def test_arguments_validated_eagerly() -> None:
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        map_tasks(abs, [1], workers=0)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        map_tasks(abs, [1], workers=True)
    with pytest.raises(ValueError, match="no known scheme"):
        map_tasks(abs, [1], scheduler="localhost:8786")
    assert validate_scheduler_address(" tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"


def test_sequential_error_propagates() -> None:
    with pytest.raises(ValueError, match="math domain error"):
        list(map_tasks(math.sqrt, [4.0, -1.0]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_scheduler_times_out_clearly() -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.perf_counter()
    with pytest.raises(
        SchedulerUnreachableError, match=rf"could not reach the Dask scheduler at {address} within 1 s"
    ):
        list(map_tasks(abs, [1], scheduler=address, connect_timeout=1.0))
    assert time.perf_counter() - start < 10


def test_local_cluster_two_workers() -> None:
    pytest.importorskip("distributed")
    seen: list[float] = []
    results = dict(
        map_tasks(math.sqrt, [1.0, 4.0, 9.0, 16.0], workers=2, on_result=lambda i, r: seen.append(r))
    )
    assert results == {1.0: 1.0, 4.0: 2.0, 9.0: 3.0, 16.0: 4.0}
    assert sorted(seen) == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="math domain error"):
        list(map_tasks(math.sqrt, [1.0, -1.0], workers=2))
    assert list(map_tasks(math.sqrt, [], workers=2)) == []


def test_local_cluster_workers_run_without_profiler() -> None:
    """The workers are separate processes and inherit LOCAL_CLUSTER_CONFIG (profiler off)."""
    pytest.importorskip("distributed")
    import os

    from aalearn.core.parallel import dask_client

    def probe() -> tuple[int, object, object]:
        import dask

        return (
            os.getpid(),
            dask.config.get("distributed.worker.profile.enabled"),
            dask.config.get("distributed.admin.system-monitor.interval"),
        )

    with dask_client(workers=2) as client:
        info = client.run(probe)
    assert len(info) == 2
    pids = {v[0] for v in info.values()}
    assert os.getpid() not in pids
    assert len(pids) == 2
    assert all(v[1] is False and v[2] == "5s" for v in info.values())
