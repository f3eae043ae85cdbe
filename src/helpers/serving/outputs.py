"""A classifier's outputs: labels and class probabilities, cut, answered and captured together.

The scoring service always computes both (captures keep the label as ``prediction`` and every
class probability as ``proba_<class>``); ``serve.output`` chooses what the answer holds:

* ``label``: ``{"predictions": ["yes", "no", ...]}``
* ``probabilities``: ``{"predictions": [{"proba_no": 0.2, "proba_yes": 0.8}, ...]}``
* ``both`` (default): ``{"predictions": [{"label": "yes", "proba_no": 0.2, "proba_yes": 0.8}, ...]}``

A request may ask for another of these in MLflow's ``params`` (``{"dataframe_split": ...,
"params": {"output": "probabilities"}}``), as an ``mlflow.pyfunc`` classifier takes
``params={"output": ...}``. A regressor's outputs are a plain array and are answered as before,
whatever ``serve.output`` says.

Example
-------
>>> out = ClassifierOutputs(np.array(["yes"]), np.array([[0.2, 0.8]]), ("no", "yes"))
>>> answer(out, "both")
[{'label': 'yes', 'proba_no': 0.2, 'proba_yes': 0.8}]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.catalogue import LABEL, PREDICTION, PROBA_PREFIX

OUTPUT_MODES: tuple[str, ...] = ("label", "probabilities", "both")


@dataclass(frozen=True)
class ClassifierOutputs:
    """Labels (``predict``) and probabilities (``predict_proba``) of some rows, and the classes."""

    labels: np.ndarray
    proba: np.ndarray  # (rows, classes), columns in the order of ``classes``
    classes: tuple[Any, ...]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def proba_columns(self) -> list[str]:
        """``proba_<class>`` per class."""
        return [f"{PROBA_PREFIX}{c}" for c in self.classes]

    def rows(self, start: int, stop: int) -> ClassifierOutputs:
        """Rows ``start`` to ``stop`` (a stacked model call cut back into requests)."""
        return ClassifierOutputs(self.labels[start:stop], self.proba[start:stop], self.classes)

    def columns(self) -> dict[str, np.ndarray]:
        """Captured columns: ``prediction`` (the label) and ``proba_<class>``."""
        out = {PREDICTION: self.labels}
        out.update({name: self.proba[:, j] for j, name in enumerate(self.proba_columns)})
        return out

    def frame(self, output: str = "both") -> pd.DataFrame:
        """The answer as a table: ``label`` and/or the ``proba_<class>`` columns."""
        table = pd.DataFrame(self.proba, columns=self.proba_columns) if output != "label" else pd.DataFrame()
        if output != "probabilities":
            table.insert(0, LABEL, self.labels)
        return table


def classifier_predict(estimator: Any) -> Any:
    """A predict function giving :class:`ClassifierOutputs` for a fitted scikit-learn classifier."""
    classes = tuple(v.item() if hasattr(v, "item") else v for v in np.asarray(estimator.classes_))

    def predict(frame: pd.DataFrame) -> ClassifierOutputs:
        labels = np.asarray(estimator.predict(frame))
        proba = np.asarray(estimator.predict_proba(frame), dtype=float)
        return ClassifierOutputs(labels, proba, classes)

    return predict


def is_classifier(estimator: Any) -> bool:
    """A fitted estimator with ``classes_`` and ``predict_proba``."""
    return hasattr(estimator, "classes_") and callable(getattr(estimator, "predict_proba", None))


def answer(outputs: Any, output: str = "both") -> Any:
    """What ``{"predictions": ...}`` holds: a classifier's outputs as ``output`` says, else as given."""
    if not isinstance(outputs, ClassifierOutputs):
        return outputs
    if output == "label":
        return _plain_list(outputs.labels)
    return outputs.frame(output).to_dict(orient="records")


def _plain_list(values: np.ndarray) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in values]


def check_output(output: str, where: str = "serve.output") -> str:
    """``output`` when it is one of :data:`OUTPUT_MODES`; ValueError otherwise."""
    if output not in OUTPUT_MODES:
        raise ValueError(f"{where} must be one of {', '.join(OUTPUT_MODES)}, got {output!r}")
    return output


def split_answer(predictions: Sequence[Any]) -> tuple[np.ndarray, pd.DataFrame | None]:
    """A classifier's labels and ``proba_<class>`` table from a ``predictions`` list (labels are None
    when only probabilities were answered); any other model's predictions as an array, and None."""
    if predictions and all(isinstance(p, dict) for p in predictions):
        table = pd.DataFrame.from_records(list(predictions))
        proba = table[[c for c in table.columns if str(c).startswith(PROBA_PREFIX)]]
        if LABEL in table or len(proba.columns):  # a classifier's answer
            labels = table[LABEL].to_numpy() if LABEL in table else np.full(len(table), None, dtype=object)
            return labels, (proba if len(proba.columns) else None)
    return np.asarray(predictions), None
