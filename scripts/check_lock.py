"""Is the committed dvc.lock stale? Run it before `dvc repro` (scripts/ci_pipeline.sh does).

    uv run python scripts/check_lock.py

dvc.lock records, per stage, the params, code and data each stage ran with and the outputs it
wrote. It is stale when a stage's recorded params or source files (code, raw data: the deps no
stage produces) differ from the branch's, or when an output kept in git (metrics, plot data)
differs from what the lock says: then the committed metrics do not belong to the committed
params. Outputs that are merely missing (a fresh clone without the DVC cache) are fine: `dvc
repro` rebuilds them, and deps that are other stages' outputs are checked through those stages.

Why not compare the lock after `dvc repro` with the committed one: training on another CPU or
GPU does not give bit-identical weights, so the model's hash (and everything after it) would
differ on every machine but the author's, and CI would fail for nothing.

Prints one line per problem and exits 1 when there is any; prints "dvc.lock is up to date" and
exits 0 otherwise.
"""

from __future__ import annotations

import sys

from dvc.repo import Repo


def stale_entries(repo: Repo) -> list[str]:
    produced = [out.def_path for stage in repo.index.stages for out in stage.outs]

    def is_produced(path: str) -> bool:
        return any(path == out or path.startswith(out.rstrip("/") + "/") for out in produced)

    problems = []
    for stage, changes in sorted(repo.status().items()):
        for change in changes:
            if not isinstance(change, dict):  # e.g. "changed command", "always changed"
                problems.append(f"{stage}: {change}")
                continue
            for kind, entries in change.items():
                for path, state in entries.items():
                    if kind == "changed deps" and not is_produced(path):
                        detail = ", ".join(f"{k} {v}" for k, v in state.items()) if isinstance(state, dict) else state
                        problems.append(f"{stage}: {path}: {detail} since dvc.lock was written")
                    elif kind == "changed outs" and state not in ("deleted", "not in cache"):
                        problems.append(f"{stage}: output {path} {state}: it is not what dvc.lock records")
    return problems


def main() -> None:
    with Repo(".") as repo:
        problems = stale_entries(repo)
    if not problems:
        print("dvc.lock is up to date")
        return
    print("dvc.lock is stale (run `dvc repro` and commit dvc.lock with the metrics it writes):")
    for problem in problems:
        print(f"  {problem}")
    sys.exit(1)


if __name__ == "__main__":
    main()
