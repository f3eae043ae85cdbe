"""Class labels of a registered classifier: output column names and feedback labels in the classes' type.

A classifier's outputs are ``label`` and one ``proba_<class>`` column per class (the names the
scoring service captures and :mod:`helpers.registry.pyfunc_classifier` answers). Feedback arrives
as JSON, so a label may come back as ``"1"``, ``1.0`` or ``true`` for a class ``1`` or ``True``:
:func:`coerce_labels` puts each label in the type of the classes the model was trained on.

Example
-------
>>> proba_columns(["no", "yes"])
['proba_no', 'proba_yes']
>>> coerce_labels(["1", 0.0, 2], [0, 1, 2]).tolist()
[1, 0, 2]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.catalogue import PROBA_PREFIX
from helpers.stats.profiling import category_label

ESTIMATOR_ARTIFACT = "estimator"  # the skops artifact of a logged classifier (pyfunc_classifier reads it)
_TRUE, _FALSE = ("true", "1", "1.0", "yes"), ("false", "0", "0.0", "no")


def proba_columns(classes: Sequence[Any]) -> list[str]:
    """``proba_<class>`` for each class, in the classes' order."""
    return [f"{PROBA_PREFIX}{c}" for c in classes]


def label_key(value: Any) -> str | None:
    """A canonical text for a label: ``1``, ``1.0`` and ``"1"`` give ``"1"``; True gives ``"True"``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_ | int | np.integer | float | np.floating):
        return category_label(value)  # the drift engine's label for a number or a boolean
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def coerce_labels(values: Any, classes: Sequence[Any]) -> pd.Series:
    """``values`` in the type of ``classes``; a value matching no class is kept as it came.

    Boolean classes also accept ``"true"``/``"false"``, ``"yes"``/``"no"`` and 1/0.
    """
    series = pd.Series(values).reset_index(drop=True)
    lookup = {label_key(c): c for c in classes}
    if all(isinstance(c, bool | np.bool_) for c in classes):
        lookup |= {k: True for k in _TRUE if True in classes} | {k: False for k in _FALSE if False in classes}

    def convert(value: Any) -> Any:
        key = label_key(value)
        found = lookup.get(key.lower() if key is not None and key.lower() in lookup else key)
        return value if found is None and key not in lookup else found

    out = series.map(convert)
    kinds = {type(c) for c in classes}
    if out.notna().all() and len(kinds) == 1 and all(isinstance(v, tuple(kinds)) for v in out):
        return out.astype(np.asarray(list(classes)).dtype)
    return out


def probabilities(frame: pd.DataFrame, classes: Sequence[Any]) -> np.ndarray | None:
    """The ``proba_<class>`` columns of ``frame`` as an (n, classes) array, or None when one is missing."""
    columns = proba_columns(classes)
    if not columns or any(c not in frame.columns for c in columns):
        return None
    return frame[columns].to_numpy(dtype=float)
