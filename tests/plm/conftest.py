"""Fixtures: a tiny randomly initialised BERT + character tokenizer saved to a temp directory."""

from __future__ import annotations

from pathlib import Path

import pytest

CHARS = list("今天气很好我们一起去北京大学习汉语中国人是的了不在有这个上来说")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["ab", "##cd", "cd"]


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-32 BertModel with a 44-entry vocabulary, saved with save_pretrained."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    d = tmp_path_factory.mktemp("tiny_bert")
    vocab = d / "vocab.txt"
    vocab.write_text("\n".join(SPECIALS + CHARS + WORDS) + "\n", encoding="utf-8")
    tok = BertTokenizer(str(vocab), do_lower_case=False, tokenize_chinese_chars=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(SPECIALS) + len(CHARS) + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).eval().save_pretrained(d)
    tok.save_pretrained(d)
    return d
