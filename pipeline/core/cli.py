"""The command line every stage shares: ``--help`` and ``--params``, and every failure printed as
one line, ``error: <path>: <what happened> (<what to do>)``, instead of a traceback: errors a user
can fix, the outside world's (a full disk, no permission), SIGTERM as Ctrl-C, and anything
unexpected (``LSTM_SENTIMENT_DEBUG=1`` shows its traceback)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.core.params import PARAMS_FILE, Params, ParamsError, load_params


class StageError(Exception):
    """Bad input or state a user can fix; printed as one line, exit status 1."""


def stage_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path(PARAMS_FILE), help="params file (default: params.yaml)")
    return parser


def stage_params(description: str) -> tuple[Params, Path]:
    """Parse a stage's command line (``--help``, ``--params``); return the params and their file."""
    path = stage_parser(description).parse_args().params
    return load_params(path), path


def answer_help(description: str) -> None:
    """Print a stage's ``--help`` and exit when it is asked for. The stages that load PyTorch,
    MLflow or gensim call it before those imports, which take seconds."""
    if {"-h", "--help"} & set(sys.argv[1:]):
        stage_parser(description).parse_args()


DEBUG = "LSTM_SENTIMENT_DEBUG"

# what went wrong and what to do, by the errno of an OSError
OS_ERRORS = {
    errno.ENOSPC: "no space left on device (free some space there, then run the stage again)",
    errno.EDQUOT: "disk quota exceeded (free some space there, then run the stage again)",
    errno.EFBIG: "file too large for this file system or its size limit (write it elsewhere or raise the limit)",
    errno.EACCES: "permission denied (check the owner and mode of the file and its folder)",
    errno.EPERM: "operation not permitted (check the owner and mode of the file and its folder)",
    errno.EROFS: "read-only file system (run the pipeline where it can write)",
    errno.ENOENT: "not found (run the earlier stages first: dvc repro)",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``docker stop``, a CI timeout): handled as Ctrl-C is, so a run is
    marked failed and nothing is left half-written."""


def _terminate(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGTERM and Ctrl-C that arrive inside the block take effect when it ends. For calls into a
    library that shares locks with its own threads (MLflow's system-metrics thread and the logging
    module): interrupted halfway, such a call can leave a lock taken that the run's end then waits
    on forever. Main thread only."""
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _: caught.append(signum)) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:  # delivered again, now to the handler the block held it from
            signal.raise_signal(caught[0])


def os_error_line(error: OSError, path: object = None) -> str:
    """``<path>: <what happened> (<what to do>)`` for an OSError."""
    where = path or error.filename
    what = OS_ERRORS.get(error.errno) or (error.strerror or str(error)).lower()
    return f"{where}: {what}" if where else what


def run_main(main: Callable[[], None]) -> None:
    """Run a stage's ``main()``; every failure becomes one line on stderr and a non-zero exit:
    1 for errors, 130 for Ctrl-C, 143 for SIGTERM."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        main()
    except (StageError, ParamsError) as err:
        _fail(str(err))
    except Terminated:
        print("terminated", file=sys.stderr)
        sys.exit(143)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        if os.environ.get(DEBUG):
            raise
        if isinstance(err, OSError):
            _fail(os_error_line(err))
        first = (str(err).strip().splitlines() or [""])[0][:300]
        _fail(f"unexpected {type(err).__name__}: {first} (set {DEBUG}=1 to see the traceback)")


def _fail(line: str) -> None:
    print(f"error: {line}", file=sys.stderr)
    sys.exit(1)
