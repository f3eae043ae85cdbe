"""The versions served beside the champion: a shadow (:mod:`~helpers.serving.shadow`) and a canary
(:mod:`~helpers.serving.canary`), loaded and followed together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from helpers.core.errors import ServeError
from helpers.serving.canary import Canary
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.formatting import first_line
from helpers.serving.models import FollowedModel, variant_uri
from helpers.serving.shadow import Shadow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VariantSpec:
    """What to serve beside the champion (``serve.shadow`` and ``serve.canary``)."""

    shadow: str | None = None  # alias, version or models:/ URI
    shadow_queue: int = 10_000  # requests waiting for the shadow at most; more are dropped
    canary: str | None = None  # alias, version or models:/ URI
    canary_share: float = 0.1
    sticky_header: str = "X-Session-Id"


@dataclass
class Variants:
    """The loaded shadow and canary (each None when not configured)."""

    shadow: Shadow | None = None
    canary: Canary | None = None

    @classmethod
    def load(
        cls,
        spec: VariantSpec,
        champion_uri: str,
        tracking_uri: str | None,
        capture: CaptureWriter | None,
        max_rows: int,
    ) -> Variants:
        """Load the versions ``spec`` names (another version of the champion's registered model).

        Raises
        ------
        ServeError
            Naming ``serve.shadow`` or ``serve.canary`` when a version cannot be loaded.
        """
        shadow = canary = None
        if spec.shadow:
            followed = _followed(champion_uri, spec.shadow, tracking_uri, "serve.shadow")
            shadow = Shadow(followed, capture, max_rows=max_rows, max_queued=spec.shadow_queue)
        if spec.canary:
            followed = _followed(champion_uri, spec.canary, tracking_uri, "serve.canary.alias")
            canary = Canary(followed, spec.canary_share, spec.sticky_header)
        return cls(shadow, canary)

    @property
    def follows(self) -> bool:
        """Whether the shadow or the canary names an alias to follow."""
        return any(v.followed.follows for v in (self.shadow, self.canary) if v is not None)

    @property
    def session_header(self) -> str | None:
        """The request header that keeps a session on one version (None without a canary)."""
        return self.canary.sticky_header if self.canary is not None else None

    def refresh(self, on_error: Callable[[BaseException], None]) -> list[str]:
        """Poll the registry for the followed aliases; returns the roles that switched versions."""
        switched = []
        for role, variant in (("shadow", self.shadow), ("canary", self.canary)):
            if variant is None:
                continue
            try:
                if variant.followed.refresh():
                    switched.append(role)
                    logger.info("%s switched to version %s", role, variant.model.version)
            except Exception as exc:  # the registry being away must not stop serving
                on_error(exc)
        return switched

    def stats(self) -> dict[str, Any]:
        """The ``shadow`` and ``canary`` parts of ``/health`` (None when not configured)."""
        return {
            "shadow": self.shadow.stats() if self.shadow is not None else None,
            "canary": self.canary.stats() if self.canary is not None else None,
        }


def _followed(champion_uri: str, name: str, tracking_uri: str | None, key: str) -> FollowedModel:
    uri = variant_uri(champion_uri, name, key)
    try:
        return FollowedModel(uri, tracking_uri)
    except Exception as exc:
        raise ServeError(f"{key}: cannot load {uri}: {first_line(exc)}") from None
