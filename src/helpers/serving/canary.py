"""The canary: another version answering a share of the requests.

A request carrying the sticky header (``X-Session-Id`` by default) is assigned by a hash of the
header's value, so a session stays on one version for as long as the share is unchanged (and a
larger share keeps every session the smaller one sent to the canary); a request without it is
assigned at random.
"""

from __future__ import annotations

import hashlib
import random
import threading
from typing import Any

from helpers.serving.models import FollowedModel, LoadedModel


def session_point(session: str) -> float:
    """A stable point in [0, 1) for a session value (the same in every process and run).

    >>> session_point("user-42") == session_point("user-42"), 0 <= session_point("x") < 1
    (True, True)
    """
    digest = hashlib.blake2b(session.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class Canary:
    """Decides which requests the canary answers, and counts them.

    Parameters
    ----------
    followed : FollowedModel
        The canary version (an alias is followed by the service's poller).
    share : float
        Share of requests (and of sessions) the canary answers, in [0, 1].
    sticky_header : str
        Requests with the same value of this header go to the same version.
    seed : int, optional
        Seed of the random assignment of requests without the header.
    """

    def __init__(
        self, followed: FollowedModel, share: float, sticky_header: str = "X-Session-Id", seed: int | None = None
    ) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"serve.canary.share must be within [0, 1], got {share}")
        self.followed = followed
        self.share = float(share)
        self.sticky_header = sticky_header
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._requests = 0

    @property
    def model(self) -> LoadedModel:
        """The canary version answering new requests."""
        return self.followed.model

    def answers(self, session: str | None) -> bool:
        """Whether the canary answers a request of ``session`` (None: no sticky header); counts it."""
        point = session_point(session) if session else self._random.random()
        chosen = point < self.share
        if chosen:
            with self._lock:
                self._requests += 1
        return chosen

    def stats(self) -> dict[str, Any]:
        """The ``canary`` part of ``/health``: version, share, sticky header, requests answered."""
        with self._lock:
            requests = self._requests
        return {
            "version": self.model.version,
            "uri": self.followed.uri,
            "share": self.share,
            "sticky_header": self.sticky_header,
            "requests": requests,
        }
