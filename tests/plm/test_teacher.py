"""PLMTeacher on a tiny local BERT: shapes, special tokens, padding, layers, errors."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from gmot.plm import PLMTeacher

TEXTS = ["今天天气很好", "我们一起去北京大学学习汉语", "中国人", "好"]


@pytest.fixture(scope="module")
def teacher(tiny_bert_dir) -> PLMTeacher:
    return PLMTeacher(tiny_bert_dir, layer=-1, batch_size=3)


def _reference(tiny_bert_dir, text: str, layer: int) -> torch.Tensor:
    """Hidden states of one unpadded sequence with [CLS]/[SEP] sliced off by position."""
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModel.from_pretrained(tiny_bert_dir).eval()
    ids = tok(text, return_tensors="pt")["input_ids"]
    assert ids[0, 0] == tok.cls_token_id and ids[0, -1] == tok.sep_token_id
    with torch.no_grad():
        hs = model(input_ids=ids, output_hidden_states=True).hidden_states
    return hs[layer][0, 1:-1]


def test_shapes_tokens_and_frozen(teacher: PLMTeacher) -> None:
    feats, lens, tokens = teacher.encode(TEXTS)
    assert teacher.dim == 32 and teacher.num_layers == 2
    assert feats.shape == (4, 13, 32) and feats.dtype == torch.float32
    assert lens.dtype == torch.int64 and lens.tolist() == [6, 13, 3, 1]
    assert tokens == [list(t) for t in TEXTS]  # one token per character, no [CLS]/[SEP]
    assert all(not p.requires_grad for p in teacher.model.parameters())
    assert not teacher.model.training
    # padding rows are exactly zero
    assert torch.all(feats[2, 3:] == 0) and torch.all(feats[3, 1:] == 0)


@pytest.mark.parametrize("layer", [0, 1, -1])
def test_matches_direct_model_call(tiny_bert_dir, layer: int) -> None:
    t = PLMTeacher(tiny_bert_dir, layer=layer)
    feats, lens, _ = t.encode(TEXTS)
    for b, text in enumerate(TEXTS):
        ref = _reference(tiny_bert_dir, text, layer)
        assert int(lens[b]) == ref.shape[0]
        torch.testing.assert_close(feats[b, : lens[b]], ref, atol=1e-5, rtol=1e-5)


def test_batch_equals_one_by_one_and_deterministic(teacher: PLMTeacher) -> None:
    feats, lens, tokens = teacher.encode(TEXTS)
    for b, text in enumerate(TEXTS):
        f1, l1, t1 = teacher.encode([text])
        assert l1.tolist() == [int(lens[b])] and t1 == [tokens[b]]
        torch.testing.assert_close(f1[0], feats[b, : lens[b]], atol=1e-5, rtol=1e-5)
    feats2, _, _ = teacher.encode(TEXTS)
    assert torch.equal(feats, feats2)


def test_layers_differ(tiny_bert_dir) -> None:
    f0, _, _ = PLMTeacher(tiny_bert_dir, layer=0).encode(TEXTS[:1])
    f2, _, _ = PLMTeacher(tiny_bert_dir, layer=2).encode(TEXTS[:1])
    fm1, _, _ = PLMTeacher(tiny_bert_dir, layer=-1).encode(TEXTS[:1])
    assert torch.equal(f2, fm1) and not torch.allclose(f0, f2)


def test_expand_to_chars(tiny_bert_dir) -> None:
    plain = PLMTeacher(tiny_bert_dir)
    exp = PLMTeacher(tiny_bert_dir, expand_to_chars=True)
    f, lens, toks = plain.encode(["好ab好"])
    assert toks == [["好", "ab", "好"]]
    fe, lens_e, toks_e = exp.encode(["好ab好"])
    assert toks_e == [["好", "a", "b", "好"]] and lens_e.tolist() == [4]
    # each character carries the vector of its covering token
    torch.testing.assert_close(fe[0], f[0, [0, 1, 1, 2]])


def test_bad_inputs(tiny_bert_dir, tmp_path, teacher: PLMTeacher) -> None:
    with pytest.raises(ValueError, match="layer=3 out of range"):
        PLMTeacher(tiny_bert_dir, layer=3)
    with pytest.raises(ValueError, match="layer=-4 out of range"):
        PLMTeacher(tiny_bert_dir, layer=-4)
    with pytest.raises(ValueError, match="not a transformers model directory"):
        PLMTeacher(tmp_path)  # exists, no config.json
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PLMTeacher(tmp_path / "nope" / "model")
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        teacher.encode(["好", "  "])
    with pytest.raises(TypeError, match="list of strings"):
        teacher.encode("好")
    with pytest.raises(ValueError, match="no PLM tokens"):
        teacher.encode(["\u200b"])  # zero-width space: stripped by the BERT tokenizer


def test_offline_hub_name_gives_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="could not load PLM 'gmot-test/not-a-real-model'"):
        PLMTeacher("gmot-test/not-a-real-model")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(tiny_bert_dir, teacher: PLMTeacher) -> None:
    gpu = PLMTeacher(tiny_bert_dir, layer=-1, device="cuda")
    feats, lens, tokens = gpu.encode(TEXTS)
    assert feats.device.type == "cuda"
    ref, ref_lens, ref_tokens = teacher.encode(TEXTS)
    assert torch.equal(lens, ref_lens) and tokens == ref_tokens
    torch.testing.assert_close(feats.cpu(), ref, atol=1e-4, rtol=1e-4)
