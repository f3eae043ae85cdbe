"""What every subcommand shares: the params options and the error dispatcher.

:func:`dispatch` is the one place where an exception becomes what the user sees:

* a :class:`~helpers.core.errors.DriftgateError` (bad params, bad data, a registry that holds no
  such model...) prints one line, ``driftgate: error: <what and how to fix it>``, and exits with
  the error's code (2 for params and data);
* any other exception is a bug of ours: one line with its type and message and the file holding
  the full traceback (``<outputs>/logs/`` when the params file loads, else the system temporary
  folder), exit code 1. With ``driftgate --debug`` the traceback is printed instead.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from helpers.core.config import load_params
from helpers.core.errors import DriftgateError

DEFAULT_PARAMS = "params/default.yaml"
DRIFT_ONLY_SECTIONS = ("drift", "alerts", "compute")  # a params file for `driftgate drift` alone
LOGS_DIR = "logs"  # under the outputs folder: tracebacks of internal errors
# A file-system error on one of these is a path the user gave (params or arguments): exit 2.
PATH_ERRNOS = frozenset({errno.ENOENT, errno.EEXIST, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EPERM,
                         errno.EROFS, errno.ENAMETOOLONG})
FILE_ERROR_REASONS = {
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.ENOENT: "no such file or folder",
    errno.EACCES: "permission denied",
}
CHATTY_LOGGERS = ("mlflow", "alembic")  # their INFO lines (creating a store...) are not for the user
MLFLOW_LEVEL_ENV = "MLFLOW_LOGGING_LEVEL"  # read when mlflow is first imported (lazily, by a command)


def add_params_args(parser: argparse.ArgumentParser, example: str = "split.test_size=0.3") -> None:
    """The ``--params FILE`` and ``-p KEY=VALUE`` options every subcommand shares."""
    parser.add_argument("--params", default=DEFAULT_PARAMS, help=f"params YAML file (default {DEFAULT_PARAMS})")
    parser.add_argument("-p", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override one parameter, e.g. -p {example} (repeatable)")


def add_debug_arg(parser: argparse.ArgumentParser, *, default: object = False) -> None:
    """The ``--debug`` flag: show the traceback of an error instead of one line."""
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the full traceback of an error (for bug reports)")


def dispatch(args: argparse.Namespace) -> int:
    """Run a parsed subcommand, turning every exception into one line and an exit code.

    Returns
    -------
    int
        The subcommand's code; the error's ``exit_code`` for a user mistake (2 for params and
        data); 1 for an internal error; 130 on Ctrl-C.
    """
    debug = bool(getattr(args, "debug", False))
    try:
        with quiet_library_logs():
            return int(args.func(args) or 0)
    except DriftgateError as exc:
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        print(f"driftgate: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("driftgate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except Exception as exc:  # not a DriftgateError: a path the user gave, or a bug of ours
        return report_unexpected(exc, args, debug)


def report_unexpected(exc: Exception, args: argparse.Namespace, debug: bool = False) -> int:
    """Print one line for an exception no check foresaw; return the exit code.

    A file-system error on a named path (a folder where a file belongs, a read-only folder...)
    is the user's to fix: it names the path and exits 2. Anything else is a bug: its type and
    message, and the log file holding its traceback (the traceback itself with ``debug``); 1.
    """
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, OSError) and exc.filename is not None:
        print(f"driftgate: error: {file_error_line(exc)}", file=sys.stderr)
        return 2 if exc.errno in PATH_ERRNOS else 1
    if not debug:
        print(internal_error_line(exc, write_traceback(exc, args)), file=sys.stderr)
    return 1


@contextlib.contextmanager
def quiet_library_logs() -> Iterator[None]:
    """MLflow and Alembic log only warnings while a command runs (unless the user chose a level)."""
    chosen = os.environ.get(MLFLOW_LEVEL_ENV)
    os.environ[MLFLOW_LEVEL_ENV] = chosen or "WARNING"
    if not chosen:
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        if chosen is None:
            os.environ.pop(MLFLOW_LEVEL_ENV, None)


def one_line(text: str) -> str:
    """``text`` with its line breaks (and the blanks around them) folded into single spaces."""
    return re.sub(r"\s*[\r\n]+\s*", " ", text.strip())


def file_error_line(exc: OSError) -> str:
    """``<path>: <reason>; check ...`` for a file-system error (the target path of a move)."""
    path = exc.filename2 if exc.filename2 is not None else exc.filename
    reason = FILE_ERROR_REASONS.get(exc.errno or 0) or (exc.strerror or exception_name(exc)).lower()
    if exc.errno == errno.EEXIST and Path(path).is_file():
        reason = "a file is in the way where a folder is needed"
    return f"{path}: {reason}; check this path (in the params file or the command's arguments)"


def exception_name(exc: BaseException) -> str:
    """The exception's class, qualified by its module unless it is a built-in."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def internal_error_line(exc: BaseException, log: Path | None) -> str:
    """The one line shown for an unexpected exception."""
    message = one_line(str(exc))
    what = f"{exception_name(exc)}: {message}" if message else exception_name(exc)
    where = f"the full traceback is in {log}" if log else "the traceback could not be written to a file"
    return f"driftgate: internal error: {what}; {where} (rerun with --debug to show it)"


def write_traceback(exc: BaseException, args: argparse.Namespace) -> Path | None:
    """Write the command line and ``exc``'s traceback to a new log file; its path, or None."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    command = getattr(args, "command", None) or "command"
    text = (
        f"driftgate {command} ({time.strftime('%Y-%m-%d %H:%M:%S %z')})\n"
        f"argv: {sys.argv!r}\narguments: {_arguments(args)}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    for folder in (params_logs_dir(args), Path(tempfile.gettempdir())):
        if folder is None:
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, prefix=f"driftgate-{command}-{stamp}-",
                                             suffix=".log", delete=False) as handle:
                handle.write(text)
            return Path(handle.name)
        except OSError:
            continue
    return None


def params_logs_dir(args: argparse.Namespace) -> Path | None:
    """``<outputs>/logs`` of the command's full params file, or None when it does not load."""
    source = getattr(args, "params", None)
    if not source:
        return None
    try:
        params = load_params(source, list(getattr(args, "overrides", None) or []))
    except Exception:  # the error being reported may be this very file's: fall back to temp
        return None
    if params.raw and set(params.raw) <= set(DRIFT_ONLY_SECTIONS):
        return None  # drift settings only: it names no outputs folder
    return params.outputs_dir / LOGS_DIR


def _arguments(args: argparse.Namespace) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in sorted(vars(args).items()) if k != "func")
