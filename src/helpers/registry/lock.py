"""The release lock: a registry-side mutex so that racing releases take turns.

The lock is a registered model named ``<model>.release-lock``, created atomically by whichever
release gets there first; it works the same on the SQLite store and on an ``mlflow server``.
A lock older than ``stale_after`` seconds is from a crashed release and is broken.

Example
-------
>>> with release_lock(client, "bike-demand", wait=120, stale_after=600) as lease:  # doctest: +SKIP
...     lease.check()
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from helpers.core.catalogue import LOCK_ACQUIRED, LOCK_HOLDER
from helpers.core.errors import RegistryError
from helpers.registry.store import LOCK_SUFFIX, error_code, short_error


@dataclass
class Lease:
    """A held release lock: who holds it and since when (local clock)."""

    client: Any
    lock_name: str
    holder: str
    acquired: float
    stale_after: float

    def check(self) -> None:
        """Raise :class:`RegistryError` unless the lock is still ours and not yet stale.

        Called just before moving an alias: a holder paused for longer than ``stale_after``
        may have had its lock broken, and must not move anything.
        """
        held_for = time.time() - self.acquired
        owner = _lock_holder(self.client, self.lock_name)
        if owner != self.holder or held_for > 0.8 * self.stale_after:
            raise RegistryError(f"release lock {self.lock_name} lost after {held_for:.0f} s "
                                f"(now held by {owner or 'nobody'}); nothing was promoted, retry")


def lock_holder() -> str:
    """A holder id unique to this process: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@contextlib.contextmanager
def release_lock(
    client: Any, name: str, *, holder: str | None = None, wait: float = 120.0,
    stale_after: float = 600.0, poll: float = 0.25,
) -> Iterator[Lease]:
    """Hold the release lock of model ``name`` for the duration of the ``with`` block.

    The lock is a registered model named ``<name>.release-lock``: creating a registered model
    is atomic in every MLflow store (the name is unique), so exactly one of several racing
    processes - on one machine or many, against SQLite or a server - gets it; the others poll
    until it is deleted, for at most ``wait`` seconds (then :class:`RegistryError`).

    A lock older than ``stale_after`` seconds (its holder crashed) is broken by renaming it to
    a tombstone named after its creation time; a rename is atomic and two breakers of the same
    stale lock target the same tombstone, so only one can succeed and a fresh lock is never
    broken by mistake. Tombstones older than twice ``stale_after`` are deleted.
    """
    holder = holder or lock_holder()
    lock_name = f"{name}{LOCK_SUFFIX}"
    deadline = time.time() + wait
    while not _try_create_lock(client, lock_name, holder):
        _break_if_stale(client, lock_name, stale_after)
        if time.time() > deadline:
            owner = _lock_holder(client, lock_name) or "a finished release"
            raise RegistryError(f"release lock {lock_name} still held by {owner} after {wait:.0f} s; "
                                "another release is running, retry later (nothing was promoted)")
        time.sleep(poll)
    lease = Lease(client, lock_name, holder, time.time(), stale_after)
    try:
        yield lease
    finally:
        _release(client, lock_name, holder)
        _sweep_tombstones(client, lock_name, stale_after)


def _try_create_lock(client: Any, lock_name: str, holder: str, attempts: int = 3) -> bool:
    """Create the lock; False when another holder has it. A request that reached the store
    but whose answer was lost (then retried) finds the lock already there, under our name."""
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            client.create_registered_model(
                lock_name, tags={LOCK_HOLDER: holder, LOCK_ACQUIRED: f"{time.time():.3f}"},
                description="Driftgate release lock: held while a release moves aliases; deleted after.",
            )
            return True
        except MlflowException as exc:
            if error_code(exc) == "RESOURCE_ALREADY_EXISTS":
                return _lock_holder(client, lock_name) == holder
            if attempt == attempts - 1:  # e.g. "database is locked" three times running
                raise RegistryError(f"release lock {lock_name}: {short_error(exc)}") from None
            time.sleep(0.2 * (attempt + 1))
    return False


def _lock_holder(client: Any, lock_name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(lock_name).tags.get(LOCK_HOLDER)
    except MlflowException:
        return None


def _break_if_stale(client: Any, lock_name: str, stale_after: float) -> None:
    from mlflow.exceptions import MlflowException

    try:
        lock = client.get_registered_model(lock_name)
    except MlflowException:
        return  # released meanwhile
    created = lock.creation_timestamp / 1000.0
    if time.time() - created <= stale_after:
        return
    try:
        client.rename_registered_model(lock_name, f"{lock_name}.stale-{lock.creation_timestamp}")
    except MlflowException:
        return  # another process broke it first (or it was released)
    logging.getLogger(__name__).warning("broke stale release lock %s held by %s",
                                        lock_name, lock.tags.get(LOCK_HOLDER))


def _release(client: Any, lock_name: str, holder: str) -> None:
    from mlflow.exceptions import MlflowException

    if _lock_holder(client, lock_name) != holder:
        return  # broken as stale while we held it: it is no longer ours to delete
    with contextlib.suppress(MlflowException):
        client.delete_registered_model(lock_name)


def _sweep_tombstones(client: Any, lock_name: str, stale_after: float) -> None:
    from mlflow.exceptions import MlflowException

    prefix = f"{lock_name}.stale-"
    with contextlib.suppress(MlflowException):
        for model in client.search_registered_models(filter_string=f"name LIKE '{prefix}%'"):
            if time.time() - model.creation_timestamp / 1000.0 > 2 * stale_after:
                with contextlib.suppress(MlflowException):
                    client.delete_registered_model(model.name)
