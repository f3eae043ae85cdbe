"""The user's own model: ``model.factory: "my_package.models:build"``.

The function is imported with the params file's folder and the current folder first on
``sys.path`` (the one it is found in is added to ``PYTHONPATH`` too, so the notebook kernels a
run starts import it as well). It is called with the params when it takes an argument, else
with none, and must return an unfitted scikit-learn-compatible estimator or Pipeline: something
with ``fit`` and ``predict`` (and ``predict_proba`` for a classification whose gates use a
probability metric). The user's feature engineering lives there; so can LightGBM's or XGBoost's
scikit-learn API.

Every mistake is a one-line :class:`ParamsError` naming ``model.factory`` and the fix.

Example
-------
>>> model = factory_model(params)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from sklearn.base import is_classifier, is_regressor

from helpers.core.config import Params
from helpers.core.errors import ParamsError

PROBABILITY_METRICS = ("roc_auc", "log_loss", "brier")  # metrics computed from predict_proba
OWN_PACKAGES = ("helpers",)  # this package: served from the install, never copied into a model


def factory_folders(params: Params) -> list[Path]:
    """Where the factory's module is looked for first: the params file's folder, the current one."""
    folders = [Path(params.source).resolve().parent] if params.source else []
    folders.append(Path.cwd().resolve())
    return list(dict.fromkeys(folders))


def _put_on_sys_path(folders: list[Path]) -> None:
    """Put ``folders`` first on ``sys.path`` (in this order)."""
    for folder in reversed(folders):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


def _export_folder(module_name: str, folders: list[Path]) -> None:
    """When ``module_name`` was found in one of ``folders``, add that folder to ``PYTHONPATH``:
    the notebook kernels a run starts (from the run folder's copy of the params) import it too."""
    location = _module_location(module_name.split(".")[0])
    root = None if location is None else location.parent
    if root not in folders:
        return
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(root) not in current:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *current])


def _one_line(exc: BaseException) -> str:
    text = [line for line in str(exc).splitlines() if line.strip()]
    return f"{exc.__class__.__name__}: {text[0].strip() if text else ''}"[:300].rstrip(": ")


def import_factory(params: Params) -> Callable[..., Any]:
    """The function ``model.factory`` names; ParamsError when its module or name is wrong."""
    where = f"{params.source or 'params'}: model.factory"
    path = str(params.model.factory)
    module_name, _, function_name = path.partition(":")
    folders = factory_folders(params)
    _put_on_sys_path(folders)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # not found, syntax error, an exception in the module body
        raise ParamsError(
            f"{where}: cannot import module {module_name!r} ({_one_line(exc)}); put it next to the "
            "params file or in the current folder, or pip install it"
        ) from None
    _export_folder(module_name, folders)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ParamsError(f"{where}: module {module_name!r} ({module.__file__}) has no function "
                          f"{function_name!r}; define it or fix the name after the colon")
    return function


def takes_params(function: Callable[..., Any]) -> bool:
    """Whether ``function`` takes an argument (the params); a factory may take none."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins without a signature: try with the params
        return True
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
             inspect.Parameter.VAR_POSITIONAL)
    return any(p.kind in kinds for p in signature.parameters.values())


def factory_model(params: Params) -> Any:
    """Import and call ``model.factory``; check what it returns; return it (unfitted)."""
    where = f"{params.source or 'params'}: model.factory"
    function = import_factory(params)
    try:
        model = function(params) if takes_params(function) else function()
    except Exception as exc:
        raise ParamsError(f"{where}: {params.model.factory} raised {_one_line(exc)}; "
                          "fix the function (call it by hand to see the traceback)") from None
    check_factory_result(model, params)
    return model


def check_factory_result(model: Any, params: Params) -> None:
    """ParamsError unless ``model`` can be fitted, predict, and suits ``data.task`` and the gates."""
    where = f"{params.source or 'params'}: model.factory"
    returned = f"{params.model.factory} returned {type(model).__name__}"
    missing = [name for name in ("fit", "predict") if not callable(getattr(model, name, None))]
    if missing:
        raise ParamsError(f"{where}: {returned}, which has no {' or '.join(missing)} method; "
                          "return an unfitted scikit-learn estimator or Pipeline")
    task = params.data.task
    wrong = is_regressor(model) if task == "classification" else is_classifier(model)
    if wrong:
        raise ParamsError(f"{where}: {returned}, which does not fit data.task={task}")
    wanted = probability_metrics(params)
    if task == "classification" and wanted and not hasattr(model, "predict_proba"):
        raise ParamsError(f"{where}: {returned}, which has no predict_proba, needed for "
                          f"{', '.join(wanted)}; return a classifier with predict_proba or drop those gates")


def probability_metrics(params: Params) -> list[str]:
    """Probability metrics the gates and the monitor use (they need ``predict_proba``)."""
    named = [*params.gates.metrics, *params.gates.current_metrics,
             params.gates.champion.metric, params.monitor.metric]
    return sorted({m for m in named if m in PROBABILITY_METRICS})


# --------------------------------------------------------------------------- code shipped with a model


def _library_folders() -> list[Path]:
    """Where installed and standard-library modules live (never the user's own code)."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    found = {Path(p).resolve() for p in (sysconfig.get_paths().get(n) for n in names) if p}
    found |= {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    return sorted(found)


def _walk(obj: Any, seen: set[int], depth: int = 0) -> Iterator[Any]:
    """``obj`` and the objects it holds (attributes, list items, dict values), each once."""
    if id(obj) in seen or depth > 20 or isinstance(obj, (str, bytes, int, float, bool, type(None))):
        return
    seen.add(id(obj))
    yield obj
    if isinstance(obj, dict):
        children: list[Any] = [*obj.keys(), *obj.values()]
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = list(obj)
    elif inspect.isfunction(obj) or inspect.isclass(obj) or isinstance(obj, ModuleType):
        children = []
    else:
        children = list(getattr(obj, "__dict__", {}).values())
    for child in children:
        yield from _walk(child, seen, depth + 1)


def model_modules(model: Any) -> set[str]:
    """Top-level modules of the classes and functions ``model`` is made of."""
    out = set()
    for obj in _walk(model, set()):
        holder = obj if inspect.isfunction(obj) or inspect.isclass(obj) else type(obj)
        module = getattr(holder, "__module__", None) or ""
        if module:
            out.add(module.split(".")[0])
    return out


def user_code_paths(model: Any, params: Params) -> list[str]:
    """Folders or files of the user's own modules that ``model`` (or ``model.factory``) uses:
    logged with the model (MLflow ``code_paths``) so it loads where they are not installed."""
    names = model_modules(model)
    if params.model.factory:
        names.add(str(params.model.factory).split(":")[0].split(".")[0])
    libraries = _library_folders()
    paths = []
    for name in sorted(names - set(OWN_PACKAGES)):
        location = _module_location(name)
        if location is not None and not any(location.is_relative_to(lib) for lib in libraries):
            paths.append(str(location))
    return paths


def _module_location(name: str) -> Path | None:
    """The package folder or module file of top-level module ``name`` (None: built in, unknown)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        folders = list(spec.submodule_search_locations)
        return Path(folders[0]).resolve() if len(folders) == 1 else None
    if spec.origin and spec.origin not in ("built-in", "frozen") and spec.origin.endswith(".py"):
        return Path(spec.origin).resolve()
    return None
