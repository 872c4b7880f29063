import pytest
import torch

from pipeline.model import LSTMClassifier, ModelConfig, reverse_real_tokens, to_right_padding


def padded(docs, seq_len, side):
    ids = torch.zeros(len(docs), seq_len, dtype=torch.long)
    for row, doc in enumerate(docs):
        if side == "left":
            ids[row, seq_len - len(doc) :] = torch.tensor(doc)
        else:
            ids[row, : len(doc)] = torch.tensor(doc)
    return ids


DOCS = [[3, 4, 5], [7], [2, 9, 9, 9, 4, 5], [6, 6]]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_output_is_one_logit_per_review(bidirectional, num_layers):
    model = LSTMClassifier(
        ModelConfig(vocab_size=12, hidden_size=8, embedding_dim=6, num_layers=num_layers, bidirectional=bidirectional)
    )
    logits = model(padded(DOCS, 10, "left"))
    assert logits.shape == (4,) and logits.dtype == torch.float32


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_padding_side_length_and_batch_neighbours_do_not_change_a_logit(bidirectional, num_layers):
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=12, hidden_size=8, embedding_dim=6, num_layers=num_layers, bidirectional=bidirectional, pad="left"
    )
    left = LSTMClassifier(config).eval()
    right = LSTMClassifier(ModelConfig(**{**config.to_dict(), "pad": "right"})).eval()
    right.load_state_dict(left.state_dict())
    batch = left(padded(DOCS, 8, "left"))
    alone = torch.stack([left(padded([doc], len(doc), "left"))[0] for doc in DOCS])
    torch.testing.assert_close(batch, alone, atol=1e-6, rtol=0)
    torch.testing.assert_close(batch, right(padded(DOCS, 20, "right")), atol=1e-6, rtol=0)


def test_word_order_reaches_the_output():
    model = LSTMClassifier(ModelConfig(vocab_size=12, hidden_size=8, embedding_dim=6)).eval()
    a, b = model(padded([[3, 4, 5], [5, 4, 3]], 5, "left"))
    assert not torch.isclose(a, b)


def test_to_right_padding_and_reverse_real_tokens():
    ids = torch.tensor([[0, 0, 1, 2], [3, 4, 5, 6]])
    right = to_right_padding(ids, torch.tensor([2, 4]))
    assert right.tolist() == [[1, 2, 0, 0], [3, 4, 5, 6]]
    x = right.unsqueeze(2).float()
    reversed_ = reverse_real_tokens(x, torch.tensor([2, 4]))
    assert reversed_.squeeze(2).tolist() == [[2, 1, 0, 0], [6, 5, 4, 3]]
    assert torch.equal(reverse_real_tokens(reversed_, torch.tensor([2, 4])), x)


def test_empty_review_still_gets_a_logit():
    model = LSTMClassifier(ModelConfig(vocab_size=12, hidden_size=4, embedding_dim=4, bidirectional=True)).eval()
    assert torch.isfinite(model(torch.zeros(2, 5, dtype=torch.long))).all()
