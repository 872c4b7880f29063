"""The command line every stage shares: ``--help`` and ``--params``, and errors a user can fix
printed as one line (exit status 1) instead of a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.params import PARAMS_FILE, Params, ParamsError, load_params


class StageError(Exception):
    """Bad input or state a user can fix; printed as one line, exit status 1."""


def stage_params(description: str) -> tuple[Params, Path]:
    """Parse a stage's command line (``--help``, ``--params``); return the params and their file."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path(PARAMS_FILE), help="params file (default: params.yaml)")
    path = parser.parse_args().params
    return load_params(path), path


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
