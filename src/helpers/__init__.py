"""Driftgate helpers: every piece of logic the notebooks and the CLI use.

The package is layered; a module imports only from its own layer or below (import-linter checks
it, ``make lint``)::

    cli         the driftgate subcommands
    pipeline    runner, step reuse, manifest, step context, one module per notebook step, retraining
    monitoring  captured traffic against the training baseline, alerts
    registry | serving   MLflow releases and gates | the scoring service and its capture store
    reports     figures and the Jinja2 HTML pages
    modeling    tables, windows, captured tables, investigate, train, metrics
    stats       profiles and the drift engine, on pandas or Dask
    core        errors, files, times, paths, the params model, the catalogue of names
"""

from __future__ import annotations

__version__ = "0.1.0"
