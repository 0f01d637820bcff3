"""All decoding methods on the real AsrModel (tiny Zipformer, every head)."""

import argparse

import pytest
import torch

from gmot.decoding.decode_main import METHODS, decode_batch


@pytest.fixture(scope="module")
def model():
    asr_model = pytest.importorskip("gmot.models.asr_model")
    torch.manual_seed(0)
    return asr_model.build_model(
        {
            "vocab_size": 30,
            "encoder": "tiny",
            "use_ctc": True,
            "use_attention_decoder": True,
            "context_size": 2,
            "decoder_dim": 64,
            "joiner_dim": 64,
        }
    ).eval()


@pytest.mark.parametrize("method", [m for m in METHODS if m != "fast_beam_search"])
def test_every_method_gives_valid_tokens(model, method):
    torch.manual_seed(1)
    x, x_lens = torch.randn(2, 120, 80), torch.tensor([120, 90])
    params = argparse.Namespace(
        decoding_method=method,
        beam_size=3,
        max_sym_per_frame=2,
        attention_scale=1.0,
        ctc_rescore_scale=1.0,
    )
    hyps = decode_batch(model, x, x_lens, params)
    assert len(hyps) == 2
    n_frames = ((x_lens - 7) // 2 + 1) // 2
    for h, n in zip(hyps, n_frames.tolist()):
        assert all(isinstance(t, int) and 0 < t < 30 for t in h), h
        assert len(h) <= 3 * n


def test_ctc_rescoring_ranks_the_first_pass_nbest(model):
    """scale 0 keeps modified_beam_search's best; a large scale picks the n-best entry that
    the CTC head's whole-sequence log-likelihood prefers."""
    from gmot.decoding.rescoring import ctc_sequence_log_probs
    from gmot.decoding.transducer_search import modified_beam_search

    torch.manual_seed(3)
    x, x_lens = torch.randn(2, 150, 80), torch.tensor([150, 110])
    with torch.no_grad():
        enc, enc_lens = model.forward_encoder(x, x_lens)
        nbest = modified_beam_search(model, enc, enc_lens, 6, return_nbest=True)
        ctc = model.ctc_output(enc)

    def decode(scale):
        p = argparse.Namespace(
            decoding_method="modified_beam_search_ctc_rescoring",
            beam_size=6,
            ctc_rescore_scale=scale,
        )
        return decode_batch(model, x, x_lens, p)

    assert decode(0.0) == [max(lst, key=lambda h: h[1])[0] for lst in nbest]
    want = []
    for b, lst in enumerate(nbest):
        hyps = [h for h, _ in lst]
        ll = ctc_sequence_log_probs(
            ctc[b : b + 1].expand(len(hyps), -1, -1), enc_lens[b : b + 1].expand(len(hyps)), hyps
        )
        want.append(hyps[int(ll.argmax())])
    assert decode(1e6) == want
    assert any(len(lst) > 1 for lst in nbest)


def test_lm_rescoring_adds_the_ngram_lm(model, tmp_path):
    """--lm-scale 0 is plain CTC rescoring; a large --lm-scale (CTC weight 0) picks the n-best
    entry that the --lm-path LM prefers (its log-probability computed here from the ARPA
    file); the scale is named in the result files and refused by the other methods."""
    from gmot.data.tokens import SPECIALS, TokenTable
    from gmot.decoding.methods import add_decoding_method_arguments, get_method
    from gmot.decoding.ngram_lm import NgramLm, train_ngram
    from gmot.decoding.transducer_search import modified_beam_search

    symbols = list(SPECIALS) + [chr(ord("A") + i) for i in range(27)]
    TokenTable(symbols).save(tmp_path / "tokens.txt")
    rng = torch.Generator().manual_seed(5)
    text = ["".join(symbols[3 + int(i)] for i in torch.randint(0, 27, (6,), generator=rng))
            for _ in range(300)]  # fmt: skip
    train_ngram(text, order=2).write_arpa(tmp_path / "lm.arpa")
    lm = NgramLm.read_arpa(tmp_path / "lm.arpa")

    torch.manual_seed(3)
    x, x_lens = torch.randn(2, 150, 80), torch.tensor([150, 110])
    with torch.no_grad():
        enc, enc_lens = model.forward_encoder(x, x_lens)
        nbest = modified_beam_search(model, enc, enc_lens, 6, return_nbest=True)

    def decode(lm_scale, **kw):
        p = argparse.Namespace(
            decoding_method="modified_beam_search_ctc_rescoring",
            beam_size=6,
            ctc_rescore_scale=1.0,
            lm_scale=lm_scale,
            lm_path=str(tmp_path / "lm.arpa"),
            tokens=str(tmp_path / "tokens.txt"),
        )
        vars(p).update(kw)
        return decode_batch(model, x, x_lens, p)

    p0 = argparse.Namespace(
        decoding_method="modified_beam_search_ctc_rescoring", beam_size=6, ctc_rescore_scale=1.0
    )
    assert decode(0.0) == decode_batch(model, x, x_lens, p0)
    want = [
        max((h for h, _ in lst), key=lambda h: lm.log_prob([symbols[i] for i in h]))
        for lst in nbest
    ]
    # CTC weight 0: only the LM reranks (with CTC, hypotheses CTC cannot align are excluded)
    assert decode(1e6, ctc_rescore_scale=0.0) == want
    assert decode(1e6, ctc_rescore_scale=0.0) != decode(0.0, ctc_rescore_scale=0.0)
    with pytest.raises(ValueError, match="no --lm-path"):
        decode(1.0, lm_path=None)
    with pytest.raises(FileNotFoundError, match="missing.arpa"):
        decode(1.0, lm_path=str(tmp_path / "missing.arpa"))

    parser = argparse.ArgumentParser()
    add_decoding_method_arguments(parser)
    args = parser.parse_args(["--lm-scale", "0.5", "--lm-path", "x.arpa"])
    name = get_method("modified_beam_search_ctc_rescoring").setting_name(args)
    assert name.endswith("_ctc_rescore_scale_1.0_lm_scale_0.5"), name
    for method in ("greedy_search", "modified_beam_search"):
        name = get_method(method).setting_name(args)
        assert name.endswith("_lm_scale_0.5"), name
    for method in ("beam_search", "ctc_greedy_search", "ctc_prefix_beam_search"):
        with pytest.raises(ValueError, match="--lm-scale applies to greedy_search and modi"):
            get_method(method).setting_name(args)

    # fusion in greedy search: with a huge scale each emitted character is the LM's favourite
    # after the ones before it (the acoustic model only decides when to emit)
    def greedy(lm_scale):
        p = argparse.Namespace(
            decoding_method="greedy_search",
            max_sym_per_frame=1,
            lm_scale=lm_scale,
            lm_path=str(tmp_path / "lm.arpa"),
            tokens=str(tmp_path / "tokens.txt"),
        )
        return decode_batch(model, x, x_lens, p)

    chars = symbols[3:]
    fused = greedy(1e4)
    assert any(fused) and fused != greedy(0.0)
    for hyp in fused:
        hist = ["<s>"]
        for tok in hyp:
            best = max(chars, key=lambda w: lm.log10_prob(hist, w))
            assert symbols[tok] == best, (hyp, hist)
            hist.append(symbols[tok])
    p_plain = argparse.Namespace(decoding_method="greedy_search", max_sym_per_frame=1)
    assert greedy(0.0) == decode_batch(model, x, x_lens, p_plain)
