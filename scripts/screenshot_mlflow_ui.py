"""Screenshot the MLflow UI comparing the two newest LSTM runs (for the README).

    uv run python scripts/screenshot_mlflow_ui.py docs/mlflow-compare.png
    uv run python scripts/screenshot_mlflow_ui.py --view charts docs/mlflow-charts.png
    uv run python scripts/screenshot_mlflow_ui.py --view experiment experiment.png   # the page a click opens

Starts ``mlflow ui`` on 127.0.0.1 (a free port) against the project's store, opens the
"compare runs" page of the two newest runs tagged ``model_type=lstm`` in headless Chromium,
saves a PNG and stops the server. Make two runs first, e.g. ``uv run dvc repro`` and
``uv run dvc exp run --temp -n lr-0002 -S train.lr=0.002``.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import mlflow

sys.path.insert(0, str(Path(__file__).parent))
from check_plots_html import run_chromium  # noqa: E402

from pipeline.core.params import load_params  # noqa: E402
from pipeline.tracking.store import tracking_uri  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, help="PNG file to write")
    parser.add_argument(
        "--view",
        choices=["compare", "charts", "experiment"],
        default="compare",
        help="the compare-runs page, the chart view, or the experiment's own page",
    )
    parser.add_argument("--size", default="1600,1500", help="window width,height (default: %(default)s)")
    args = parser.parse_args()

    uri = tracking_uri()
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(load_params().mlflow.experiment)
    if experiment is None:
        raise SystemExit("error: no MLflow experiment yet (run: uv run dvc repro)")
    runs = client.search_runs(
        [experiment.experiment_id], "tags.model_type = 'lstm'", order_by=["start_time DESC"], max_results=2
    )
    if len(runs) < 2:
        raise SystemExit("error: need two LSTM runs to compare (see this script's --help)")
    run_ids = [r.info.run_id for r in runs]
    print("comparing", ", ".join(f"{r.info.run_name} ({r.info.run_id[:8]})" for r in runs))

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit("error: mlflow ui did not start")
        if args.view == "compare":
            query = urllib.parse.urlencode(
                {"runs": json.dumps(run_ids), "experiments": json.dumps([experiment.experiment_id])}
            )
            url = f"http://127.0.0.1:{port}/#/compare-runs?{query}"
        elif args.view == "experiment":
            url = f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}?workflowType=machine_learning"
        else:
            query = urllib.parse.urlencode({"compareRunsMode": "CHART", "searchFilter": "tags.model_type = 'lstm'"})
            url = f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs?{query}"
        args.output.parent.mkdir(parents=True, exist_ok=True)
        run_chromium(url, f"--screenshot={args.output.resolve()}", f"--window-size={args.size}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
