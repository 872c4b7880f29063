"""One typed view of ``params.yaml``.

Every stage calls :func:`load_params` and reads its own section; no stage parses YAML itself.
Unknown keys and wrong types stop the stage before it does any work, with a message that
names the key, so a typo in ``dvc exp run -S`` never runs silently with a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

PARAMS_FILE = "params.yaml"


class ParamsError(ValueError):
    """A problem in params.yaml, with the dotted key that caused it."""


@dataclass(frozen=True)
class DataParams:
    train: str = "data/sample/train.ft.txt.bz2"
    test: str = "data/sample/test.ft.txt.bz2"
    # ingest stops (non-zero exit) when more than this share of a split's lines is rejected
    max_reject_fraction: float = 0.01


@dataclass(frozen=True)
class CleanParams:
    lowercase: bool = True
    replace_digits: bool = True  # every digit becomes "0", as the tutorial
    replace_urls: bool = True  # URLs become the single token "<url>"
    strip_html: bool = True  # tags such as <br /> become a space


@dataclass(frozen=True)
class TokenizeParams:
    level: Literal["word", "char"] = "word"


@dataclass(frozen=True)
class VocabParams:
    min_freq: int = 2
    max_size: int | None = None  # counts <pad> and <unk>


@dataclass(frozen=True)
class EncodeParams:
    seq_len: int = 200
    truncate: Literal["keep_first", "keep_last"] = "keep_first"
    pad: Literal["left", "right"] = "left"
    val_fraction: float = 0.5  # share of the test file that becomes the validation split
    seed: int = 42
    shard_rows: int = 100_000


@dataclass(frozen=True)
class PretrainParams:
    method: Literal["skipgram", "cbow"] = "skipgram"  # word2vec's two models
    vector_size: int = 64  # must equal train.embedding_dim for train.init: word2vec
    window: int = 5  # context words on each side
    negative: int = 5  # negative samples per positive one
    epochs: int = 5
    seed: int = 42
    workers: int = 1  # threads; more is faster, but the vectors are then not the same bytes on every run
    extra_text: str = "data/extra"  # more unlabelled text: a file, or a folder of *.txt, *.bz2, *.gz files


@dataclass(frozen=True)
class TrainParams:
    embedding_dim: int = 64
    init: Literal["random", "word2vec"] = "random"  # the embedding's start: random, or the pretrain stage's vectors
    hidden_size: int | list[int] = 64  # one width for every layer, or one per layer: [128, 64]
    num_layers: int = 1
    dropout: float = 0.2
    embedding_dropout: float = 0.0  # dropout on the embedded tokens (regularises small data sets)
    bidirectional: bool = False
    pooling: Literal["last", "mean", "max"] = "last"  # the head reads the last real step, or pools them
    lr: float = 0.005
    lr_schedule: Literal["constant", "cosine", "plateau"] = "constant"
    batch_size: int = 128
    bucket_by_length: bool = True  # batches of similar lengths: less padding, much faster
    epochs: int = 4
    patience: int = 0  # stop after this many validations without a better val loss; 0: never
    grad_clip: float = 5.0
    threshold: float = 0.5  # probability above which a review is positive: validation, evaluation and serving
    eval_every: int = 0  # validate every N steps; 0 validates once per epoch only
    seed: int = 42
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 on a GPU that has it, else fp32
    # where the token ids live: device (copied once), host (each batch copied through pinned memory),
    # auto (device when they take at most half the GPU's free memory)
    data_placement: Literal["auto", "device", "host"] = "auto"
    resume: bool = False  # continue from models/checkpoint.pt when it was written with the same params

    def layer_widths(self) -> tuple[int, ...]:
        if isinstance(self.hidden_size, int):
            return (self.hidden_size,) * self.num_layers
        return tuple(self.hidden_size)


@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int = 1024
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # accuracy by review length (kept tokens) in buckets cut at these lengths
    length_buckets: list[int] = field(default_factory=lambda: [25, 50, 100, 200])


@dataclass(frozen=True)
class BaselineParams:
    ngram_max: int = 2  # word n-grams from 1 up to this
    min_df: int = 2  # keep n-grams seen in at least this many train reviews
    max_features: int | None = None
    C: float = 4.0  # inverse regularisation strength of the logistic regression
    max_iter: int = 1000


@dataclass(frozen=True)
class MlflowParams:
    experiment: str = "lstm-sentiment"
    registered_model: str | None = "lstm-sentiment"  # registry name for evaluated models; null: do not register
    champion_margin: float = 0.0  # @champion moves unless the champion did better by more than this


@dataclass(frozen=True)
class Params:
    data: DataParams = field(default_factory=DataParams)
    clean: CleanParams = field(default_factory=CleanParams)
    tokenize: TokenizeParams = field(default_factory=TokenizeParams)
    vocab: VocabParams = field(default_factory=VocabParams)
    encode: EncodeParams = field(default_factory=EncodeParams)
    pretrain: PretrainParams = field(default_factory=PretrainParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    baseline: BaselineParams = field(default_factory=BaselineParams)
    mlflow: MlflowParams = field(default_factory=MlflowParams)

    def flat(self) -> dict[str, object]:
        """``{"train.lr": 0.005, ...}``: the form MLflow and ``dvc exp run -S`` use."""
        return {
            f"{section.name}.{key}": value
            for section in dataclasses.fields(self)
            for key, value in dataclasses.asdict(getattr(self, section.name)).items()
        }


def _type_name(tp: object) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(v) for v in typing.get_args(tp))
    if typing.get_origin(tp) is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    args = typing.get_args(tp)
    if args:
        return " or ".join(_type_name(a) for a in args)
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _check_value(key: str, value: object, tp: object) -> object:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        for option in typing.get_args(tp):
            try:
                return _check_value(key, value, option)
            except ParamsError:
                continue
    elif origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin is list:
        if isinstance(value, list):
            (item_type,) = typing.get_args(tp)
            return [_check_value(f"{key}[{i}]", item, item_type) for i, item in enumerate(value)]
    elif tp is type(None):
        if value is None:
            return value
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ParamsError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def _build(cls: type, mapping: object, prefix: str):
    if not isinstance(mapping, dict):
        raise ParamsError(f"{prefix or 'params'}: expected a mapping, got {mapping!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - known)
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ParamsError(f"{where}: unknown key (known: {', '.join(sorted(known))})")
    values = {}
    for name, value in mapping.items():
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, value, key)
        else:
            values[name] = _check_value(key, value, tp)
    return cls(**values)


def _check_ranges(p: Params) -> None:
    positive = {
        "vocab.min_freq": p.vocab.min_freq,
        "encode.seq_len": p.encode.seq_len,
        "encode.shard_rows": p.encode.shard_rows,
        "pretrain.vector_size": p.pretrain.vector_size,
        "pretrain.window": p.pretrain.window,
        "pretrain.negative": p.pretrain.negative,
        "pretrain.epochs": p.pretrain.epochs,
        "pretrain.workers": p.pretrain.workers,
        "train.embedding_dim": p.train.embedding_dim,
        "train.num_layers": p.train.num_layers,
        "train.batch_size": p.train.batch_size,
        "train.epochs": p.train.epochs,
        "train.lr": p.train.lr,
        "train.grad_clip": p.train.grad_clip,  # clip_grad_norm_ with a negative norm reverses every gradient
        "evaluate.batch_size": p.evaluate.batch_size,
        "baseline.ngram_max": p.baseline.ngram_max,
        "baseline.min_df": p.baseline.min_df,
        "baseline.C": p.baseline.C,
        "baseline.max_iter": p.baseline.max_iter,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ParamsError(f"{key}: must be > 0, got {value}")
    if p.baseline.max_features is not None and p.baseline.max_features <= 0:
        raise ParamsError(f"baseline.max_features: must be > 0 or null, got {p.baseline.max_features}")
    if p.vocab.max_size is not None and p.vocab.max_size < 3:
        raise ParamsError(f"vocab.max_size: must be >= 3 (it counts <pad> and <unk>), got {p.vocab.max_size}")
    for key, value in {
        "data.max_reject_fraction": p.data.max_reject_fraction,
        "train.threshold": p.train.threshold,
    }.items():
        if not 0.0 <= value <= 1.0:
            raise ParamsError(f"{key}: must be between 0 and 1, got {value}")
    if not 0.0 <= p.mlflow.champion_margin <= 1.0:
        raise ParamsError(f"mlflow.champion_margin: must be between 0 and 1, got {p.mlflow.champion_margin}")
    for key, value in {"train.dropout": p.train.dropout, "train.embedding_dropout": p.train.embedding_dropout}.items():
        if not 0.0 <= value < 1.0:  # 1.0 drops every value: nothing is learned
            raise ParamsError(f"{key}: must be at least 0 and below 1, got {value}")
    for key, value in {
        "mlflow.experiment": p.mlflow.experiment,
        "mlflow.registered_model": p.mlflow.registered_model,
    }.items():
        if value is not None and not value.strip():
            raise ParamsError(f"{key}: must not be empty" + (" (null: do not register)" if "registered" in key else ""))
    edges = p.evaluate.length_buckets
    if any(edge <= 1 for edge in edges) or edges != sorted(set(edges)):
        raise ParamsError(f"evaluate.length_buckets: must be increasing lengths > 1, got {edges}")
    if not 0.0 < p.encode.val_fraction < 1.0:
        raise ParamsError(f"encode.val_fraction: must be between 0 and 1 (exclusive), got {p.encode.val_fraction}")
    for key in ("eval_every", "patience"):
        if getattr(p.train, key) < 0:
            raise ParamsError(f"train.{key}: must be >= 0, got {getattr(p.train, key)}")
    widths = p.train.hidden_size
    if isinstance(widths, list):
        if len(widths) != p.train.num_layers:
            raise ParamsError(
                f"train.hidden_size: {len(widths)} widths given but train.num_layers is {p.train.num_layers}"
            )
    if min(p.train.layer_widths()) <= 0:
        raise ParamsError(f"train.hidden_size: must be > 0, got {widths}")


def parse_params(mapping: dict | None) -> Params:
    params = _build(Params, mapping or {}, "")
    _check_ranges(params)
    return params


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: file not found (run from the repository root)")
    with path.open(encoding="utf-8") as f:
        try:
            mapping = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise ParamsError(f"{path}: not valid YAML: {err}") from None
    try:
        return parse_params(mapping)
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}") from None
