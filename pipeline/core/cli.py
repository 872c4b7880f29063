"""The command line every stage shares: ``--help`` and ``--params``, and errors a user can fix
printed as one line (exit status 1) instead of a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
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


def run_main(main: Callable[[], None]) -> None:
    """Run a stage's ``main()``; known errors become one line on stderr and exit 1."""
    try:
        main()
    except (StageError, ParamsError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
