"""Running one function over partitions: in this process, or on a dask.distributed cluster.

:func:`runner` gives a :class:`Runner` for ``compute.scheduler`` (``pandas``: in-process,
``local``: a LocalCluster living as long as the block, or a scheduler address such as
``tcp://host:8786``). Results come back in task order, so merges do not depend on which worker
finished first; a failure names the partition it came from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from helpers.core.config import ComputeParams
from helpers.core.errors import DataError, ParamsError
from helpers.stats.partitions import describe_error

if TYPE_CHECKING:
    from distributed import Client


@dataclass
class Runner:
    """Runs one function over partitions, in this process or on a Dask client; results in order."""

    client: Client | None = None
    progress: bool = True

    @property
    def where(self) -> str:
        """A short description for report notes."""
        if self.client is None:
            return "in-process (pandas)"
        workers = self.client.scheduler_info().get("workers", {})
        return f"Dask ({len(workers)} workers at {self.client.scheduler.address})"

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], labels: Sequence[str],
            desc: str) -> Iterator[Any]:
        """``fn(*task)`` for every task, yielded in task order; errors become DataError naming the label."""
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc, unit="part", disable=None if self.progress else True, leave=False)
        try:
            if self.client is None:
                for task, label in zip(tasks, labels, strict=True):
                    result = _named(label, fn, *task)
                    bar.update()
                    yield result
            else:
                yield from self._distributed(fn, tasks, labels, bar)
        finally:
            bar.close()

    def _distributed(self, fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], labels: Sequence[str],
                     bar: Any) -> Iterator[Any]:
        import dask
        from distributed import as_completed

        assert self.client is not None
        delayed = [dask.delayed(_named, pure=False)(label, fn, *task) for task, label in zip(tasks, labels,
                                                                                              strict=True)]
        futures = self.client.compute(delayed)
        position = {f.key: i for i, f in enumerate(futures)}
        pending: dict[int, Any] = {}
        ready = 0
        try:
            for future in as_completed(futures):
                i = position[future.key]
                pending[i] = _named(labels[i], future.result)
                future.release()
                bar.update()
                while ready in pending:
                    yield pending.pop(ready)
                    ready += 1
        finally:
            self.client.cancel([f for f in futures if not f.done()])


def _named(label: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, with any failure turned into a DataError that names the partition."""
    try:
        return fn(*args)
    except DataError as exc:
        text = str(exc)
        raise DataError(text if label.split(" (")[0] in text else f"{label}: {text}") from None
    except Exception as exc:
        raise DataError(f"{label}: {describe_error(exc)}") from None


def check_scheduler(compute: ComputeParams) -> str:
    """``pandas``, ``local`` or a scheduler address; anything else is a ParamsError."""
    value = compute.scheduler.strip()
    if value in ("pandas", "local") or "://" in value:
        return value
    raise ParamsError(f"compute.scheduler: {value!r} is not pandas, local or a scheduler address like "
                      "tcp://host:8786")


@contextmanager
def runner(compute: ComputeParams, client: Client | None = None) -> Iterator[Runner]:
    """A :class:`Runner` for ``compute.scheduler``; a local cluster lives as long as the block.

    Pass an existing ``client`` to use it (it is left open).
    """
    scheduler = check_scheduler(compute)
    if client is not None:
        yield Runner(client, compute.progress)
    elif scheduler == "pandas":
        yield Runner(None, compute.progress)
    elif scheduler == "local":
        with local_client(compute) as own:
            yield Runner(own, compute.progress)
    else:
        from distributed import Client

        try:
            own = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ParamsError(f"compute.scheduler: cannot reach {scheduler} ({exc})") from None
        with own:
            yield Runner(own, compute.progress)


@contextmanager
def local_client(compute: ComputeParams) -> Iterator[Client]:
    """A client of a LocalCluster sized by ``compute`` (HTTP endpoints on a free port, quiet logs)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=compute.n_workers, threads_per_worker=compute.threads_per_worker,
                      processes=compute.processes, memory_limit=compute.memory_limit,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client
