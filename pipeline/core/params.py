"""One typed view of ``params.yaml``: pydantic models, one per section, each range and choice
declared on its field.

Every stage calls :func:`load_params` and reads its own section; no stage parses YAML itself.
Unknown keys, wrong types and values out of range stop the stage before it does any work, with
one line that names the dotted key, what was expected and what was given, so a typo in
``dvc exp run -S`` never runs silently with a default.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

PARAMS_FILE = "params.yaml"

Fraction = Annotated[float, Field(ge=0, le=1)]
Dropout = Annotated[float, Field(ge=0, lt=1)]  # 1.0 drops every value: nothing is learned


class ParamsError(ValueError):
    """A problem in params.yaml, with the dotted key that caused it."""


class Section(BaseModel):
    # strict: no "3" for 3, no 1 for true; an int is still taken where a float is expected
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class LabelClass(Section):
    name: Annotated[str, Field(min_length=1, pattern=r"\S")]  # as outputs name it: "neutral", "5 stars"
    labels: Annotated[list[str | int], Field(min_length=1)]  # the label values that mean it


class DataParams(Section):
    train: str = "data/sample/train.ft.txt.bz2"
    test: str = "data/sample/test.ft.txt.bz2"  # "" or data.train's file: no test file, ingest splits data.train
    test_fraction: float = Field(0.2, gt=0, lt=1)  # with no test file: this share of each class becomes the test split
    seed: int = 42  # of that split
    # auto: from the file name (.csv, .tsv, .jsonl/.ndjson, .parquet, also inside .bz2/.gz; else fastText lines)
    format: Literal["auto", "fasttext", "csv", "tsv", "jsonl", "parquet"] = "auto"
    header: bool = True  # CSV/TSV: the first row names the columns; false: every row is a review
    columns: list[str] = []  # a header-less file's column names in order; []: column_1, column_2, ...
    text_column: str = "text"  # tables: the review's text
    title_column: str | None = None  # tables: a title, joined before the text as "title: text"
    label_column: str = "label"  # tables: the label, mapped by the two lists below
    # the classes in order, each its name and the label values (tables) that mean it; any other value is
    # a counted reject. fastText lines: __label__1 is the first class, __label__2 the second, ...
    classes: list[LabelClass] = [
        LabelClass(name="negative", labels=["negative", "neg", 0]),
        LabelClass(name="positive", labels=["positive", "pos", 1]),
    ]
    ordinal: bool = False  # the classes are in order (stars): evaluate also reports errors in classes
    # ingest stops (non-zero exit) when more than this share of a split's lines is rejected
    max_reject_fraction: Fraction = 0.01
    max_chars: PositiveInt = 100_000  # a longer line is a reject ("too long"): a pasted log, not a review
    score: list[str] = []  # [a file of new reviews] for the score stage; []: no score stage
    keep_columns: list[str] = []  # score: columns of that file copied to the predictions (ids)

    def test_file(self) -> str | None:
        """The test split's own file, or None when ingest splits data.train (``data.test`` empty,
        or the same file however written: ``./a.csv`` is ``a.csv``)."""
        if not self.test or Path(self.test).resolve() == Path(self.train).resolve():
            return None
        return self.test

    @field_validator("score", mode="before")
    @classmethod
    def one_file_to_score(cls, files: object) -> object:
        if isinstance(files, str):
            raise ValueError(f"a list, as DVC makes the stage for each listed file: [{files}]")
        if isinstance(files, list) and len(files) > 1:
            raise ValueError(f"one file at most (scored into data/predictions/scored.parquet), got {files}")
        return files

    @field_validator("columns")
    @classmethod
    def names_for_no_header(cls, names: list[str], info: ValidationInfo) -> list[str]:
        if names and info.data.get("header", True):
            raise ValueError("names the columns of a file without a header row: set data.header: false too")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"{repeated[0]!r} is named twice")
        return names

    @field_validator("classes")
    @classmethod
    def one_class_per_value(cls, classes: list[LabelClass]) -> list[LabelClass]:
        names = [c.name for c in classes]
        if len(classes) < 2:
            raise ValueError(f"needs at least two classes, got {names}")
        if len(set(names)) < len(names):
            raise ValueError(f"class {next(n for n in names if names.count(n) > 1)!r} is named twice")
        owner: dict[str, str] = {}
        for label_class in classes:
            for value in label_class.labels:
                if label_key(value) in owner:
                    raise ValueError(
                        f"{value!r} is in class {owner[label_key(value)]!r} and in class {label_class.name!r}: "
                        "a label value maps to one class"
                    )
                owner[label_key(value)] = label_class.name
        return classes

    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)


def label_key(value: str | int) -> str:
    """A label value as ingest compares it: text, trimmed, lower case (pipeline.data.tables.label_text)."""
    return str(value).strip().lower()


class CleanParams(Section):
    lowercase: bool = True
    replace_digits: bool = True  # every digit becomes "0", as the tutorial
    replace_urls: bool = True  # URLs become the single token "<url>"
    strip_html: bool = True  # tags such as <br /> become a space


class TokenizeParams(Section):
    level: Literal["word", "char"] = "word"


class VocabParams(Section):
    min_freq: PositiveInt = 2
    max_size: int | None = Field(None, ge=3)  # counts <pad> and <unk>


class EncodeParams(Section):
    seq_len: PositiveInt = 200
    truncate: Literal["keep_first", "keep_last"] = "keep_first"
    pad: Literal["left", "right"] = "left"
    val_fraction: float = Field(0.5, gt=0, lt=1)  # share of the test file that becomes the validation split
    seed: int = 42
    shard_rows: PositiveInt = 100_000


class PretrainParams(Section):
    # word vectors learned (gensim), read from pretrain.vectors, or the file's then word2vec's side by side
    # (the rest of vector_size); auto: word2vec, and the file's beside it when the text is small;
    # or an LSTM language model (PyTorch)
    kind: Literal["word2vec", "vectors", "word2vec+vectors", "auto", "lm"] = "word2vec"
    vector_size: PositiveInt = 64  # the vectors' or the language model's embedding: must equal train.embedding_dim
    epochs: PositiveInt = 5
    seed: int = 42
    extra_text: str = "data/extra"  # more unlabelled text: a file, or a folder of *.txt, *.bz2, *.gz files
    # vectors and word2vec+vectors: a GloVe .txt or fastText .vec file (plain, .gz or .bz2), or a folder holding one
    vectors: str = "data/vectors"
    # auto: text (train split and extra text) of fewer words than this adds the file's vectors, if there is one
    small_text_words: PositiveInt = 1_000_000
    # word2vec only
    method: Literal["skipgram", "cbow"] = "skipgram"  # word2vec's two models
    window: PositiveInt = 5  # context words on each side
    negative: PositiveInt = 5  # negative samples per positive one
    workers: PositiveInt = 1  # threads; more is faster, but the vectors are then not the same bytes on every run
    # lm only
    hidden_size: PositiveInt = 64  # the LSTM's width: must equal the classifier's first layer
    bidirectional: bool = True  # a backward language model too, to start a bidirectional classifier's other half
    bptt: PositiveInt = 70  # tokens per window of truncated backpropagation through time
    batch_size: PositiveInt = 64  # parallel streams of text
    lr: PositiveFloat = 0.003  # Adam, on a cosine schedule to 0
    dropout: Dropout = 0.1  # on the embedded tokens and the LSTM's outputs


class TrainParams(Section):
    embedding_dim: PositiveInt = 64
    # the start: random, the pretrain stage's word vectors (embedding), or its language model (embedding
    # and first LSTM layer)
    init: Literal["random", "word2vec", "lm"] = "random"
    num_layers: PositiveInt = 1  # before hidden_size, whose check reads it
    hidden_size: PositiveInt | list[PositiveInt] = 64  # one width for every layer, or one per layer: [128, 64]
    dropout: Dropout = 0.2
    embedding_dropout: Dropout = 0.0  # dropout on the embedded tokens (regularises small data sets)
    bidirectional: bool = False
    pooling: Literal["last", "mean", "max", "concat"] = "last"  # head input: last real step, mean, max, or all 3
    lr: PositiveFloat = 0.005
    lr_schedule: Literal["constant", "cosine", "plateau"] = "constant"
    batch_size: PositiveInt = 128
    bucket_by_length: bool = True  # batches of similar lengths: less padding, much faster
    epochs: PositiveInt = 4
    patience: NonNegativeInt = 0  # stop after this many validations without a better val loss; 0: never
    # adversarial training: also learn from each batch with its embedded tokens pushed this far (L2 norm
    # per review, in units of the embedding's spread) along the loss gradient; 0: off
    adversarial_epsilon: NonNegativeFloat = 0.0
    # fine-tuning a pretrained start (ULMFiT): the parameters init started are frozen for this many
    # epochs while the rest learns, then learn at lr times pretrained_lr_factor; no effect with init random
    freeze_pretrained_epochs: NonNegativeInt = 0
    pretrained_lr_factor: PositiveFloat = 1.0
    grad_clip: PositiveFloat = 5.0  # clip_grad_norm_ with a negative norm reverses every gradient
    threshold: Fraction = 0.5  # probability above which a review is positive: validation, evaluation and serving
    eval_every: NonNegativeInt = 0  # validate every N steps; 0 validates once per epoch only
    seed: int = 42
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 on a GPU that has it, else fp32
    # where the token ids live: device (copied once), host (each batch copied through pinned memory),
    # auto (device when they take at most half the GPU's free memory)
    data_placement: Literal["auto", "device", "host"] = "auto"
    resume: bool = False  # continue from models/checkpoint.pt when it was written with the same params
    # blend the LSTM with the ngrams stage's model, at the weight with the lowest validation loss
    blend: bool = True

    @field_validator("hidden_size")
    @classmethod
    def one_width_per_layer(cls, widths: int | list[int], info: ValidationInfo) -> int | list[int]:
        layers = info.data.get("num_layers")
        if isinstance(widths, list) and layers is not None and len(widths) != layers:
            raise ValueError(f"{len(widths)} widths given but train.num_layers is {layers}")
        return widths

    def layer_widths(self) -> tuple[int, ...]:
        if isinstance(self.hidden_size, int):
            return (self.hidden_size,) * self.num_layers
        return tuple(self.hidden_size)


class EvaluateParams(Section):
    batch_size: PositiveInt = 1024
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # accuracy by review length (kept tokens) in buckets cut at these lengths
    length_buckets: list[int] = [25, 50, 100, 200]

    @field_validator("length_buckets")
    @classmethod
    def increasing(cls, edges: list[int]) -> list[int]:
        if any(edge <= 1 for edge in edges) or edges != sorted(set(edges)):
            raise ValueError(f"must be increasing lengths > 1, got {edges}")
        return edges


class BaselineParams(Section):
    ngram_max: PositiveInt = 2  # word n-grams from 1 up to this
    min_df: PositiveInt = 2  # keep n-grams seen in at least this many train reviews
    max_features: PositiveInt | None = None
    C: PositiveFloat = 4.0  # inverse regularisation strength of the logistic regression
    max_iter: PositiveInt = 1000


class NgramsParams(Section):
    ngram_max: PositiveInt = 3  # word n-grams from 1 up to this
    buckets: int = Field(2**20, ge=2**10, le=2**26)  # n-grams hashed into this many weights (4 bytes each)
    C: PositiveFloat = 1.0  # inverse regularisation strength of the logistic regression
    max_iter: PositiveInt = 1000


class MlflowParams(Section):
    experiment: str = "lstm-sentiment"
    registered_model: str | None = "lstm-sentiment"  # registry name for evaluated models; null: do not register
    champion_margin: Fraction = 0.0  # @champion moves unless the champion did better by more than this

    @field_validator("experiment", "registered_model")
    @classmethod
    def not_blank(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None and not name.strip():
            hint = " (null: do not register)" if info.field_name == "registered_model" else ""
            raise ValueError(f"must not be empty{hint}")
        return name


class Params(Section):
    data: DataParams = DataParams()
    clean: CleanParams = CleanParams()
    tokenize: TokenizeParams = TokenizeParams()
    vocab: VocabParams = VocabParams()
    encode: EncodeParams = EncodeParams()
    pretrain: PretrainParams = PretrainParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    baseline: BaselineParams = BaselineParams()
    ngrams: NgramsParams = NgramsParams()
    mlflow: MlflowParams = MlflowParams()

    def flat(self) -> dict[str, object]:
        """``{"train.lr": 0.005, ...}``: the form MLflow and ``dvc exp run -S`` use."""
        return {f"{name}.{key}": value for name, section in self.model_dump().items() for key, value in section.items()}


def _type_name(tp: object) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return " or ".join(repr(v) for v in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"{{{', '.join(tp.model_fields)}}}"  # a nested section: the keys it takes
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in args)
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


RANGE_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")
SYMBOLS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _range(bounds: dict[str, float]) -> str:
    """``{"ge": 0, "lt": 1}`` -> ``at least 0 and below 1``; ``{"gt": 0}`` -> ``> 0``."""
    if len(bounds) == 1:
        ((op, value),) = bounds.items()
        return f"{SYMBOLS[op]} {value}"
    low, high = (bounds.get("gt", bounds.get("ge")), bounds.get("lt", bounds.get("le")))
    if "ge" in bounds and "lt" in bounds:
        return f"at least {low} and below {high}"
    return f"between {low} and {high}" + (" (exclusive)" if "gt" in bounds and "lt" in bounds else "")


def _message(error: dict) -> str:
    """One of pydantic's errors as ``<dotted key>: <what was expected>, got <what was given>``."""
    path = [part for part in error["loc"][:2] if isinstance(part, str)]  # section, key
    where, kind, given = ".".join(path) or "params", error["type"], error["input"]
    model = Params.model_fields[path[0]].annotation if len(path) == 2 else Params
    if len(error["loc"]) > 2:  # inside a list of sections (data.classes): where in it, and pydantic's words
        inner = [part for part in error["loc"][2:] if part not in ("str", "int")]  # not a union's member names
        where += "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in inner)
        return f"{where}: {error['msg'][0].lower()}{error['msg'][1:]}, got {given!r}"
    if kind == "extra_forbidden":
        return f"{where}: unknown key (known: {', '.join(sorted(model.model_fields))})"
    if kind in ("model_type", "dict_type"):
        return f"{where}: expected a mapping, got {given!r}"
    if kind == "value_error":
        return f"{where}: {error['ctx']['error']}"
    field = model.model_fields[path[1]]
    if kind in RANGE_ERRORS:
        bounds = {op: getattr(m, op) for m in field.metadata for op in SYMBOLS if hasattr(m, op)}
        nullable = type(None) in typing.get_args(field.annotation)
        return f"{where}: must be {_range(bounds or error['ctx'])}{' or null' if nullable else ''}, got {given!r}"
    return f"{where}: expected {_type_name(field.annotation)}, got {given!r}"


def parse_params(mapping: dict | None) -> Params:
    mapping = {} if mapping is None else mapping
    try:
        return Params.model_validate(mapping)
    except ValidationError as err:
        errors = err.errors()
        # of the first bad key's errors (one per type a union allows), the one that says most
        first = [e for e in errors if e["loc"][:2] == errors[0]["loc"][:2]]
        telling = [e for e in first if e["type"] in RANGE_ERRORS or e["type"] == "value_error"]
        raise ParamsError(_message((telling or first)[0])) from None


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
