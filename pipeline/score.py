"""score: a file of new, unlabelled reviews -> their probability, label and sentiment, with the trained model.

``data.score`` lists the file (``[path/to/new.csv]``; ``[]``, the default, leaves the stage out
of the pipeline): any format ingest reads, told by ``data.format``, with the text in
``data.text_column`` (and ``data.title_column``, if set); no label is needed. Its rows are
read and scored a batch at a time (memory does not grow with the file) through the same
``pipeline.model.inference.Predictor`` as ``python -m pipeline.predict``, with the model file
``models/model.pt``.

Writes ``data/predictions/scored.parquet``: one row per input row, in the input's order, with
``row`` (the input's line or row number), the columns ``data.keep_columns`` names (ids, as
text), ``probability``, ``label`` and ``sentiment``. A row that cannot be scored keeps its place,
with no probability or label and the reason as its sentiment ("empty text", "invalid UTF-8",
"CSV row does not parse: ...", "no known words"). DVC re-runs the stage only when the model,
the file or these params change.
"""

from __future__ import annotations

from pipeline.core.cli import StageError, answer_help, run_main, stage_params
from pipeline.core.cpu_math import pin_code_paths

if __name__ == "__main__":  # run as a stage, not imported: nothing global changes on import
    answer_help(__doc__)  # at once: the imports below take seconds
    pin_code_paths()  # before NumPy and PyTorch load: they pick their code paths then

from pathlib import Path

from pipeline.core import paths
from pipeline.data.tables import Columns
from pipeline.model.devices import pick_device
from pipeline.model.inference import Predictor
from pipeline.model.scoring import score_file


def main() -> None:
    params, _ = stage_params(__doc__)
    if not params.data.score:
        raise StageError("data.score is empty: nothing to score (set it to a file of reviews: data.score=[new.csv])")
    source = Path(params.data.score[0])
    if not source.is_file():
        raise StageError(f"{source}: no such file (set data.score in params.yaml)")
    data = params.data
    columns = Columns(
        data.text_column,
        data.title_column,
        keep=tuple(data.keep_columns),
        header=data.header,
        column_names=tuple(data.columns),
    )
    predictor = Predictor.from_path(paths.MODEL_FILE, pick_device("auto"))
    counts = score_file(predictor, source, data.format, columns, paths.SCORED_FILE)
    unscored = f", {counts['unscored']} without a score (see their sentiment)" if counts["unscored"] else ""
    print(f"score: {counts['rows']} reviews of {source} scored{unscored} -> {paths.SCORED_FILE}")


if __name__ == "__main__":
    run_main(main)
