"""Rollback: ``champion`` back to ``previous``, with the reason recorded and a page written.

Example
-------
>>> rollback(params, reason="error rate doubled").to_version  # doctest: +SKIP
'3'
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from helpers.core import catalogue as names
from helpers.core.catalogue import CHAMPION, PREVIOUS
from helpers.core.config import Params
from helpers.core.errors import RegistryError
from helpers.core.times import utc_now_iso, utc_stamp
from helpers.registry import store
from helpers.registry.audit import current_user, releases_dir
from helpers.registry.lock import release_lock
from helpers.reports.pages import write_index
from helpers.reports.release_page import write_rollback_page

ROLLED_BACK = "rolled back"


@dataclass
class Rollback:
    """What a rollback did."""

    model: str
    from_version: str  # the champion taken out
    to_version: str  # the previous version, champion again
    previous: str | None  # the new ``previous`` alias (the champion before to_version), if any
    reason: str
    by: str
    at: str
    page: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def rollback(params: Params, *, reason: str = "", by: str | None = None) -> Rollback:
    """Move ``champion`` back to ``previous`` and record why, under the release lock.

    The new ``previous`` is the version that was champion before the restored one (so
    rollbacks can be repeated), or none. Tags record the reason on both versions and on the
    registered model; a page goes to ``<outputs>/releases/``.
    """
    client = store.connect(params)
    name = params.mlflow.model_name
    store.require_model(client, name)
    rules = params.gates
    done = Rollback(model=name, from_version="", to_version="", previous=None,
                    reason=reason.strip() or "no reason given", by=by or current_user(), at=utc_now_iso())
    with release_lock(client, name, wait=rules.lock_timeout, stale_after=rules.lock_stale_after) as lease:
        champion = store.version_with_alias(client, name, CHAMPION)
        previous = store.version_with_alias(client, name, PREVIOUS)
        if champion is None:
            raise RegistryError(f"model {name!r} has no champion: nothing to roll back")
        if previous is None:
            raise RegistryError(f"model {name!r} has no previous version: champion v{champion.version} "
                                "is the first release, nothing to roll back to")
        done.from_version, done.to_version = str(champion.version), str(previous.version)
        done.previous = _earlier_champion(client, name, previous, exclude={done.from_version, done.to_version})
        lease.check()
        store.demote(client, name, done.to_version, done.previous)
        _record_rollback(client, params, done)
    page = releases_dir(params) / f"{utc_stamp()}-rollback-v{done.from_version}.html"
    done.page = str(page)
    write_rollback_page(page, done)
    client.set_model_version_tag(name, done.from_version, names.RELEASE_PAGE, done.page)
    write_index(params.outputs_dir)
    return done


def _earlier_champion(client: Any, name: str, mv: Any, exclude: set[str]) -> str | None:
    """The champion before ``mv`` was promoted, if it still exists and is not excluded."""
    from mlflow.exceptions import MlflowException

    earlier = mv.tags.get(names.CHAMPION_BEFORE) or None
    if earlier is None or earlier in exclude:
        return None
    try:
        client.get_model_version(name, earlier)
    except MlflowException:
        return None
    return earlier


def _record_rollback(client: Any, params: Params, done: Rollback) -> None:
    name = params.mlflow.model_name
    store.tag_version(client, name, done.from_version, {
        names.DECISION: ROLLED_BACK, names.ROLLBACK_REASON: done.reason, names.ROLLED_BACK_AT: done.at,
        names.ROLLED_BACK_BY: done.by, names.ROLLED_BACK_TO: done.to_version,
    })
    store.tag_version(client, name, done.to_version, {names.RESTORED_AT: done.at, names.RESTORED_REASON: done.reason})
    client.set_registered_model_tag(name, names.LAST_ROLLBACK, json.dumps(done.to_dict()))
