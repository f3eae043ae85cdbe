"""The small exception hierarchy: each error tells the user what to do.

Every error a user can cause by their input derives from :class:`DriftgateError`; the CLI
prints its message on one line and exits with :attr:`DriftgateError.exit_code` instead of
showing a traceback.
"""

from __future__ import annotations


class DriftgateError(Exception):
    """Base class for errors caused by user input or environment, shown without a traceback."""

    exit_code = 1


class ParamsError(DriftgateError):
    """A parameter file or override is invalid (names the file and the key path)."""

    exit_code = 2


class DataError(DriftgateError):
    """Input data cannot be read or does not match what the parameters ask for."""

    exit_code = 2


class StepFailed(DriftgateError):
    """A pipeline step (notebook) failed while executing."""

    exit_code = 1


class RegistryError(DriftgateError):
    """The model registry cannot be reached or holds no such model, version or alias."""

    exit_code = 1


class ServeError(DriftgateError):
    """The scoring service cannot start or cannot load its model."""

    exit_code = 1
