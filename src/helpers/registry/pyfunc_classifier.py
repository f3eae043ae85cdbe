"""The MLflow model of a registered classifier: labels by default, class probabilities on request.

MLflow logs this file *as code* with the fitted scikit-learn classifier as a skops artifact (see
:func:`helpers.registry.store.log_model`), so a registered classifier loads anywhere MLflow,
scikit-learn and skops are installed, without Driftgate::

    model = mlflow.pyfunc.load_model("models:/churn@champion")
    model.predict(frame)                                         # labels
    model.predict(frame, params={"output": "probabilities"})     # proba_<class> columns
    model.predict(frame, params={"output": "both"})              # label and proba_<class> columns

The file imports nothing from Driftgate (MLflow runs it under a module name of its own); its
top-level MLflow import is the one exception to the package's rule, since the class derives from
MLflow's ``PythonModel``.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

ESTIMATOR_ARTIFACT = "estimator"  # the skops file of the fitted classifier
LABEL = "label"
PROBA_PREFIX = "proba_"
OUTPUTS = ("label", "probabilities", "both")


class ClassifierModel(PythonModel):
    """A fitted scikit-learn classifier answering labels, probabilities or both."""

    estimator: Any = None

    def load_context(self, context: Any) -> None:
        """Load the classifier from its artifact: skops, trusting the types recorded when it was
        logged, or cloudpickle (a user's factory model that skops cannot save)."""
        config = context.model_config or {}
        path = context.artifacts[ESTIMATOR_ARTIFACT]
        if config.get("format") == "cloudpickle":
            import cloudpickle

            with open(path, "rb") as handle:
                self.estimator = cloudpickle.load(handle)
            return
        import skops.io as sio

        self.estimator = sio.load(path, trusted=list(config.get("skops_trusted_types", [])))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        """Labels (``output="label"``, the default), ``proba_<class>`` columns, or both."""
        output = str((params or {}).get("output") or "label")
        if output not in OUTPUTS:
            raise ValueError(f"params.output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        if output == "label":
            return self.estimator.predict(model_input)
        proba = pd.DataFrame(np.asarray(self.estimator.predict_proba(model_input), dtype=float),
                             columns=[f"{PROBA_PREFIX}{c}" for c in self.estimator.classes_])
        if output == "probabilities":
            return proba
        proba.insert(0, LABEL, self.estimator.predict(model_input))
        return proba


if __name__.startswith("code_model_"):  # loaded by MLflow as the model's code
    mlflow.models.set_model(ClassifierModel())
