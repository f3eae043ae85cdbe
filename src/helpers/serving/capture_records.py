"""Capture records: one answered request or one batch of ground truth, as handed to the writer.

Captured tables hold one row per scored input row: the meta columns of :data:`CAPTURE_COLUMNS`,
the model's input columns under their own names, and the outputs as ``prediction`` (or
``prediction_<i>`` for several outputs); a classifier's as ``prediction`` (the label) and one
``proba_<class>`` column per class. Feedback tables hold ``request_id``, ``row``,
``label`` and ``timestamp`` (when the feedback arrived).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.catalogue import PREDICTION
from helpers.serving.outputs import ClassifierOutputs


@dataclass(frozen=True)
class CaptureRecord:
    """One answered request: its inputs, outputs and metadata, as handed to the writer.

    Parameters
    ----------
    request_id : str
        The id returned to the client in the ``X-Request-Id`` header.
    timestamp : float
        When the request arrived, seconds since the epoch (UTC).
    latency_ms : float
        Milliseconds from arrival to outputs.
    model_name, model_version : str
        The model that answered.
    inputs : pandas.DataFrame
        The checked input rows (not modified afterwards; the writer converts them in bulk).
    outputs : dict of str to numpy.ndarray
        Output columns, each with one value per input row (see :func:`output_columns`).
    role : str
        ``champion`` (answered the request), ``canary`` (answered it instead of the champion) or
        ``shadow`` (scored it beside the champion; the client never saw this prediction).
    """

    request_id: str
    timestamp: float
    latency_ms: float
    model_name: str
    model_version: str
    inputs: pd.DataFrame
    outputs: dict[str, np.ndarray]
    role: str = "champion"

    @property
    def n_rows(self) -> int:
        """Number of rows scored in this request."""
        return len(self.inputs)

    @classmethod
    def from_frame(
        cls,
        request_id: str,
        inputs: pd.DataFrame,
        outputs: Any,
        *,
        model_name: str,
        model_version: str,
        latency_ms: float,
        timestamp: float | None = None,
        role: str = "champion",
    ) -> CaptureRecord:
        """Build a record from the checked input frame and the model's outputs.

        Examples
        --------
        >>> rec = CaptureRecord.from_frame("r1", pd.DataFrame({"x": [1.0]}), np.array([2.0]),
        ...                                model_name="m", model_version="1", latency_ms=1.0)
        >>> list(rec.outputs), rec.n_rows
        (['prediction'], 1)
        """
        return cls(
            request_id=request_id,
            timestamp=time.time() if timestamp is None else timestamp,
            latency_ms=float(latency_ms),
            model_name=model_name,
            model_version=model_version,
            inputs=inputs,
            outputs=output_columns(outputs, len(inputs)),
            role=role,
        )


@dataclass(frozen=True)
class FeedbackRecord:
    """Ground truth for scored rows, as handed to the writer.

    Parameters
    ----------
    model_name : str
        The model whose captures the feedback belongs beside.
    request_ids, rows, labels : sequence
        Equal-length sequences: the request id, the row within that request, the true value.
    timestamp : float
        When the feedback arrived, seconds since the epoch (UTC).
    """

    model_name: str
    request_ids: list[str]
    rows: list[int]
    labels: list[Any]
    timestamp: float = field(default_factory=time.time)

    @property
    def n_rows(self) -> int:
        """Number of labelled rows."""
        return len(self.request_ids)


def output_columns(outputs: Any, n_rows: int) -> dict[str, np.ndarray]:
    """Turn model outputs into named columns: ``prediction`` or ``prediction_<i>``; a classifier's
    into ``prediction`` (the label) and ``proba_<class>``.

    Examples
    --------
    >>> sorted(output_columns(np.zeros((2, 2)), 2))
    ['prediction_0', 'prediction_1']
    """
    if isinstance(outputs, ClassifierOutputs):
        return outputs.columns()
    if isinstance(outputs, pd.DataFrame):
        return {f"{PREDICTION}_{c}": outputs[c].to_numpy() for c in outputs.columns}
    values = np.asarray(outputs)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim <= 1:
        return {PREDICTION: values.reshape(n_rows)}
    return {f"{PREDICTION}_{j}": values[:, j] for j in range(values.shape[1])}
