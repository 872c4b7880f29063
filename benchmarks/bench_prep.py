"""Data stages (ingest -> clean -> vocab -> encode) vs the tutorial's preprocessing, at N reviews.

For each N: tiles the real Amazon subset to N train lines (bz2, cached in --work-dir), then on
the same input measures, in one run:

- the decompression floor: ``bzip2 -dc INPUT > /dev/null``;
- ours: ``dvc repro encode`` in a temporary copy of this repository (DVC overhead included);
- the tutorial-style baseline (benchmarks/tutorial_prep.py), unless --no-baseline;

and prints seconds, reviews/s, the ratios and the peak RSS (largest process of each side).
The test file is the real Amazon test subset for both sides; reviews/s counts train + test.

    uv run python benchmarks/bench_prep.py --reviews 200000 1000000
    uv run python benchmarks/bench_prep.py --reviews 3600000 --no-baseline
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "amazon_polarity"


def timed(args: list[str], cwd: Path | None = None, stdout=subprocess.DEVNULL) -> tuple[float, float]:
    """``(seconds, peak RSS in GB of the largest process of the tree)`` of one command."""
    start = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(args)} failed:\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss / 1e6  # ru_maxrss is in KB on Linux


def tiled_input(source: Path, rows: int, work_dir: Path) -> Path:
    """``rows`` lines of ``source`` repeated, bz2-compressed with the bzip2 tool (cached)."""
    target = work_dir / f"amazon-tiled-{rows}.ft.txt.bz2"
    if target.exists():
        return target
    text = subprocess.run(["bzip2", "-dc", str(source)], capture_output=True, check=True).stdout
    lines = text.splitlines(keepends=True)
    plain = target.with_suffix("")
    with plain.open("wb") as f:
        f.writelines(itertools.islice(itertools.cycle(lines), rows))
    subprocess.run(["bzip2", "-9", "-f", str(plain)], check=True)
    return target


def repo_copy(destination: Path, train: Path, test: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)
    params = yaml.safe_load((destination / "params.yaml").read_text())
    params["data"].update(train=str(train), test=str(test))
    (destination / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviews", type=int, nargs="+", default=[200_000], help="train lines N (default 200000)")
    parser.add_argument("--no-baseline", action="store_true", help="measure ours and the floor only")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "lstm-sentiment-bench")
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"real data not found at {SHARED}")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    test = SHARED / "test.ft.txt.bz2"
    test_rows = sum(1 for _ in subprocess.run(["bzip2", "-dc", str(test)], capture_output=True).stdout.splitlines())
    dvc = Path(sys.executable).parent / "dvc"
    os.environ["PATH"] = f"{dvc.parent}{os.pathsep}{os.environ['PATH']}"  # dvc's "python" is ours

    for rows in args.reviews:
        train = tiled_input(SHARED / "train.ft.txt.bz2", rows, args.work_dir)
        reviews = rows + test_rows
        with open(os.devnull, "wb") as devnull:
            floor_s, _ = timed(["bzip2", "-dc", str(train)], stdout=devnull)
        with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
            copy = repo_copy(Path(tmp), train, test)
            ours_s, ours_gb = timed([str(dvc), "repro", "encode"], cwd=copy)
        print(f"N = {rows:,} train + {test_rows:,} test reviews ({train.stat().st_size / 1e6:.0f} MB bz2)")
        print(f"  bzip2 -dc floor : {floor_s:8.1f} s")
        print(
            f"  ours (dvc repro encode): {ours_s:8.1f} s  {reviews / ours_s:10,.0f} reviews/s  "
            f"peak RSS {ours_gb:.2f} GB  = {ours_s / floor_s:.2f}x the floor"
        )
        if not args.no_baseline:
            script = str(REPO / "benchmarks" / "tutorial_prep.py")
            base_s, base_gb = timed([sys.executable, script, str(train), str(test)])
            print(
                f"  tutorial-style  : {base_s:8.1f} s  {reviews / base_s:10,.0f} reviews/s  peak RSS {base_gb:.2f} GB"
            )
            print(f"  ours is {base_s / ours_s:.1f}x faster than the tutorial-style baseline")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
