import polars as pl
import pytest

from pipeline.core.cli import StageError
from pipeline.core.params import VocabParams
from pipeline.vocab import build_vocab, count_tokens, vocab_metrics


def counts_of(*docs):
    frame = pl.DataFrame({"tokens": list(docs)}, schema={"tokens": pl.List(pl.String)})
    return count_tokens(frame.to_arrow().to_batches(max_chunksize=2))  # several batches, merged


def test_ids_by_count_descending_then_token_ascending():
    counts = counts_of(["b", "a", "c", "b"], ["a", "b", "d", "c"], ["e"], [])
    assert build_vocab(counts, VocabParams(min_freq=1)) == ["<pad>", "<unk>", "b", "a", "c", "d", "e"]


def test_min_freq_and_max_size():
    counts = counts_of(["x", "x", "y", "y", "y", "z"])
    assert build_vocab(counts, VocabParams(min_freq=2)) == ["<pad>", "<unk>", "y", "x"]
    assert build_vocab(counts, VocabParams(min_freq=1, max_size=3)) == ["<pad>", "<unk>", "y"]


def test_special_tokens_in_text_do_not_get_a_second_id():
    counts = counts_of(["<unk>", "<unk>", "<pad>", "<pad>", "ok", "ok"])
    assert build_vocab(counts, VocabParams(min_freq=1)) == ["<pad>", "<unk>", "ok"]


def test_metrics_report_coverage_of_train_tokens():
    counts = counts_of(["a", "a", "a", "b"])
    vocab = build_vocab(counts, VocabParams(min_freq=2))
    assert vocab_metrics(counts, vocab) == {
        "size": 3,
        "distinct_train_tokens": 2,
        "train_tokens": 4,
        "train_coverage": 0.75,
    }


def test_a_vocabulary_of_only_pad_and_unk_is_an_error_naming_the_param():
    with pytest.raises(StageError) as error:
        build_vocab(counts_of(["x", "y"], ["x"]), VocabParams(min_freq=1_000_000_000))
    assert str(error.value) == (
        "no train token is seen at least vocab.min_freq (1000000000) times: the vocabulary would hold only "
        "<pad> and <unk> (lower vocab.min_freq, or check the train data)"
    )
