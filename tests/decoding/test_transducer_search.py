import itertools
import math

import pytest
import torch
from tiny_transducer import TableModel, TinyTransducer

from gmot.decoding import (
    beam_search,
    fast_beam_search,
    fuse_lm,
    greedy_search,
    greedy_search_batch,
    modified_beam_search,
)


def _random_batch(B=3, T=9, C=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    enc = torch.randn(B, T, C, generator=g) * 2
    lens = torch.tensor([T, T - 4, T - 1][:B])
    return enc, lens


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    model = TinyTransducer().eval()
    # larger output weights so hypotheses contain non-blank tokens
    with torch.no_grad():
        model.joiner.output_linear.weight.mul_(4)
    return model


def _check_valid(hyps, B, V, lens, max_per_frame):
    assert len(hyps) == B
    for h, n in zip(hyps, lens.tolist()):
        assert all(isinstance(x, int) and 0 < x < V for x in h), h
        assert len(h) <= n * max_per_frame


@pytest.mark.parametrize("max_sym", [1, 2])
def test_all_searches_valid_on_random_model(tiny, max_sym):
    enc, lens = _random_batch()
    V = tiny.decoder.vocab_size
    batch = greedy_search_batch(tiny, enc, lens, max_sym_per_frame=max_sym)
    single = greedy_search(tiny, enc, lens, max_sym_per_frame=max_sym)
    assert batch == single
    assert sum(len(h) for h in batch) > 0
    _check_valid(batch, 3, V, lens, max_sym)
    _check_valid(
        beam_search(tiny, enc, lens, beam=3, max_sym_per_frame=max_sym), 3, V, lens, max_sym
    )
    _check_valid(modified_beam_search(tiny, enc, lens, beam=4), 3, V, lens, 1)


def test_modified_beam_one_equals_greedy(tiny):
    for seed in range(3):
        enc, lens = _random_batch(seed=seed)
        assert modified_beam_search(tiny, enc, lens, beam=1) == greedy_search_batch(
            tiny, enc, lens, max_sym_per_frame=1
        )


def test_batch_order_independent(tiny):
    enc, lens = _random_batch()
    full = modified_beam_search(tiny, enc, lens, beam=3)
    for b in range(3):
        one = modified_beam_search(tiny, enc[b : b + 1, : lens[b]], lens[b : b + 1], beam=3)
        assert one[0] == full[b]


def _brute_force_one_symbol_per_frame(model, enc_b):
    """Most probable label sequence under the one-symbol-per-frame topology (all paths)."""
    V = model.decoder.vocab_size
    c = model.decoder.context_size
    totals: dict[tuple, float] = {}
    for path in itertools.product(range(V), repeat=enc_b.shape[0]):
        ys, logp = [0] * c, 0.0
        for t, tok in enumerate(path):
            ctx = torch.tensor([ys], dtype=torch.int64)
            dec = model.decoder(ctx, need_pad=True)[:, -1]  # full history, padded
            logits = model.joiner(enc_b[t : t + 1], dec)  # project_input=True
            logp += float(logits.detach().log_softmax(-1)[0, tok])
            if tok != 0:
                ys.append(tok)
        key = tuple(ys[c:])
        totals[key] = (
            logp
            if key not in totals
            else float(torch.logaddexp(torch.tensor(totals[key]), torch.tensor(logp)))
        )
    return list(max(totals, key=totals.get)), totals


def test_modified_beam_search_large_beam_is_exact():
    torch.manual_seed(1)
    model = TinyTransducer(vocab_size=4).eval()
    with torch.no_grad():
        model.joiner.output_linear.weight.mul_(3)
    enc = torch.randn(1, 3, 6) * 2
    best, totals = _brute_force_one_symbol_per_frame(model, enc[0])
    nbest = modified_beam_search(model, enc, torch.tensor([3]), beam=200, return_nbest=True)[0]
    assert nbest[0][0] == best
    assert math.isclose(nbest[0][1], totals[tuple(best)], rel_tol=1e-4, abs_tol=1e-4)
    # all label sequences are kept and their log-probs match the enumeration
    assert len(nbest) == len(totals)
    for toks, lp in nbest:
        assert math.isclose(lp, totals[tuple(toks)], rel_tol=1e-4, abs_tol=1e-4)


def _designed_table(T, V, emits):
    """Blank logit 5, other tokens 0, except emits[(t, last)] = token with logit 10."""
    table = torch.zeros(T, V, V)
    table[:, :, 0] = 5.0
    for (t, last), tok in emits.items():
        table[t, last, tok] = 10.0
    return table


def test_designed_best_path_greedy_and_beam():
    # frame 0: 3; frame 2: 5 then 2 (two symbols on one frame); frame 3: 4
    table = _designed_table(4, 6, {(0, 0): 3, (2, 3): 5, (2, 5): 2, (3, 2): 4})
    model = TableModel(table)
    enc, lens = model.encoder_out()
    expected = [[3, 5, 2, 4]]
    assert greedy_search_batch(model, enc, lens, max_sym_per_frame=2) == expected
    assert greedy_search(model, enc, lens, max_sym_per_frame=2) == expected
    assert beam_search(model, enc, lens, beam=4, max_sym_per_frame=3) == expected
    # one symbol per frame: the second symbol of frame 2 cannot be emitted
    assert greedy_search_batch(model, enc, lens, max_sym_per_frame=1) == [[3, 5]]


def test_beam_finds_path_greedy_misses():
    # Blank dominates (logit 5) except: frame 0 offers token 1 (logit 7) slightly above
    # token 2 (6.8); after 1, frame 1 is uniform; after 2, frame 1 is certainly 3.
    # Best sequence [2, 3] (p ~ 0.39) although greedy starts with 1 (p([1, ...]) < 0.52 / 6).
    T, V = 2, 6
    table = torch.zeros(T, V, V)
    table[:, :, 0] = 5.0
    table[0, 0, 1], table[0, 0, 2] = 7.0, 6.8
    table[1, 1, :] = 0.0
    table[1, 2, 3] = 10.0
    model = TableModel(table)
    enc, lens = model.encoder_out()
    assert greedy_search_batch(model, enc, lens)[0][0] == 1
    assert modified_beam_search(model, enc, lens, beam=2) == [[2, 3]]
    assert beam_search(model, enc, lens, beam=2, max_sym_per_frame=2) == [[2, 3]]
    designed = _designed_table(3, 6, {(0, 0): 3, (1, 3): 5, (2, 5): 4})
    m2 = TableModel(designed)
    e2, l2 = m2.encoder_out()
    assert modified_beam_search(m2, e2, l2, beam=4) == [[3, 5, 4]]


def test_bad_inputs_raise(tiny):
    enc, lens = _random_batch()
    with pytest.raises(ValueError, match="encoder_out_lens"):
        greedy_search_batch(tiny, enc, lens[:2])
    with pytest.raises(ValueError, match="max_sym_per_frame"):
        greedy_search_batch(tiny, enc, lens, max_sym_per_frame=0)
    with pytest.raises(ValueError, match="beam"):
        modified_beam_search(tiny, enc, lens, beam=0)


def test_fast_beam_search_without_k2_is_clear(tiny):
    try:
        import k2  # noqa: F401

        pytest.skip("k2 is installed")
    except ImportError:
        pass
    enc, lens = _random_batch()
    with pytest.raises(RuntimeError, match="needs k2"):
        fast_beam_search(tiny, enc, lens)


@pytest.mark.parametrize("penalty", [0.5, 2.0])
def test_blank_penalty_equals_a_lower_blank_bias(tiny, penalty):
    """--blank-penalty p must act exactly like a joiner whose blank output bias is p lower."""
    import copy

    enc, lens = _random_batch(seed=3)
    lowered = copy.deepcopy(tiny)
    with torch.no_grad():
        lowered.joiner.output_linear.bias[tiny.decoder.blank_id] -= penalty
    for max_sym in (1, 2):
        got = greedy_search_batch(tiny, enc, lens, max_sym, blank_penalty=penalty)
        assert got == greedy_search_batch(lowered, enc, lens, max_sym)
        assert got == greedy_search(tiny, enc, lens, max_sym, blank_penalty=penalty)
    got = modified_beam_search(tiny, enc, lens, 3, blank_penalty=penalty)
    assert got == modified_beam_search(lowered, enc, lens, 3)
    # n-best: the same hypotheses in the same order; scores equal up to float rounding (the
    # penalty is subtracted after the joiner, the bias inside it)
    got = modified_beam_search(tiny, enc, lens, 3, True, blank_penalty=penalty)
    want = modified_beam_search(lowered, enc, lens, 3, True)
    assert [[t for t, _ in nb] for nb in got] == [[t for t, _ in nb] for nb in want]
    for nb_got, nb_want in zip(got, want):
        for (_, a), (_, b) in zip(nb_got, nb_want):
            assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-5)
    # the flag's purpose: a model with a stronger blank emits less; the penalty undoes that
    quiet = copy.deepcopy(tiny)
    with torch.no_grad():
        quiet.joiner.output_linear.bias[tiny.decoder.blank_id] += 3.0
    restored = greedy_search_batch(quiet, enc, lens, blank_penalty=3.0)
    assert restored == greedy_search_batch(tiny, enc, lens)
    assert sum(map(len, greedy_search_batch(quiet, enc, lens))) < sum(map(len, restored))


def _ctc_spikes(B, T, V, spikes, blank=0, seed=0):
    """(B, T, V) CTC log-probabilities: blank everywhere except ``spikes[b] = {t: token}``."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=g)
    logits[..., blank] += 8.0
    for b, frames in enumerate(spikes):
        for t, tok in frames.items():
            logits[b, t, tok] += 16.0
    return logits.log_softmax(-1)


def test_joint_ctc_scoring_follows_a_confident_ctc_head(tiny):
    """With a large weight the frame decisions are the CTC head's: its spikes come out in order,
    repeated tokens included, whatever the transducer says."""
    enc, lens = _random_batch(seed=4)
    V = tiny.decoder.vocab_size
    spikes = [{1: 3, 4: 3, 7: 2}, {0: 1, 2: 1}, {5: 4, 6: 3}]
    ctc = _ctc_spikes(3, enc.shape[1], V, spikes)
    want = [[3, 3, 2], [1, 1], [4, 3]]
    assert greedy_search_batch(tiny, enc, lens, 1, ctc_scores=50.0 * ctc) == want
    assert greedy_search(tiny, enc, lens, 1, ctc_scores=50.0 * ctc) == want
    assert modified_beam_search(tiny, enc, lens, 3, ctc_scores=50.0 * ctc) == want
    # weight 0 is the transducer alone
    zero = torch.zeros_like(ctc)
    assert greedy_search_batch(tiny, enc, lens, 1, ctc_scores=zero) == greedy_search_batch(
        tiny, enc, lens, 1
    )


def test_joint_ctc_scoring_is_the_argmax_of_the_summed_log_probs(tiny):
    """Recompute each frame's decision by hand: argmax of log_softmax(joiner) + ctc_scores."""
    enc, lens = _random_batch(seed=5)
    V = tiny.decoder.vocab_size
    g = torch.Generator().manual_seed(7)
    scores = 0.8 * torch.randn(3, enc.shape[1], V, generator=g).log_softmax(-1)
    got = greedy_search_batch(tiny, enc, lens, 1, ctc_scores=scores)
    c, blank = tiny.decoder.context_size, tiny.decoder.blank_id
    for b in range(3):
        ys = [blank] * c
        for t in range(int(lens[b])):
            dec = tiny.decoder(torch.tensor([ys[-c:]]), need_pad=False)[:, -1]
            logits = tiny.joiner(enc[b : b + 1, t], dec)  # projects both inputs
            tok = int((logits.log_softmax(-1)[0] + scores[b, t]).argmax())
            if tok != blank:
                ys.append(tok)
        assert got[b] == ys[c:], b
    assert got == greedy_search(tiny, enc, lens, 1, ctc_scores=scores)
    # beam 1 of the modified beam search is greedy search, with joint scoring too
    assert modified_beam_search(tiny, enc, lens, 1, ctc_scores=scores) == got


def test_joint_ctc_scoring_checks_the_shape(tiny):
    enc, lens = _random_batch()
    with pytest.raises(ValueError, match="ctc_scores must be"):
        greedy_search_batch(tiny, enc, lens, ctc_scores=torch.zeros(2, enc.shape[1], 5))
    with pytest.raises(ValueError, match="ctc_scores must be"):
        modified_beam_search(tiny, enc, lens, 2, ctc_scores=torch.zeros(3, 2, 5))


# ------------------------------------------------------------------------------- LM fusion
class _TableLm:
    """A token LM given as a table: next-token log-probs depend on the last token only
    (``table[last]``, row 0 for the empty history); records the histories it was asked."""

    def __init__(self, V, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.table = (3.0 * torch.randn(V, V, generator=g)).log_softmax(-1)
        self.asked = []

    def next_log_probs(self, histories):
        self.asked.extend(tuple(h) for h in histories)
        return torch.stack([self.table[h[-1] if h else 0] for h in histories])


def test_fuse_lm_keeps_blank_and_the_emission_mass():
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(4, 6, generator=g).log_softmax(-1)
    lm = torch.randn(4, 6, generator=g).log_softmax(-1)
    fused = fuse_lm(scores, lm, 0.7, blank_id=0)
    assert torch.equal(fused[:, 0], scores[:, 0])
    torch.testing.assert_close(fused[:, 1:].logsumexp(-1), scores[:, 1:].logsumexp(-1))
    # the characters are re-ranked by scores + 0.7 * lm (a constant shift per row)
    shift = fused[:, 1:] - (scores[:, 1:] + 0.7 * lm[:, 1:])
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift))
    assert fuse_lm(scores, lm, 0.0, 0) is scores
    # a very large scale puts (nearly) all the emission mass on the LM's favourite character
    big = fuse_lm(scores, lm, 1e3, 0)
    assert torch.equal(big[:, 1:].argmax(-1), lm[:, 1:].argmax(-1))


def test_lm_fusion_greedy_by_hand(tiny):
    """Each greedy decision is the argmax of fuse_lm(log_softmax(joiner), lm(history)); the
    batched, per-utterance and beam-1 searches agree, and the LM sees the emitted tokens."""
    enc, lens = _random_batch(seed=6)
    V = tiny.decoder.vocab_size
    lm = _TableLm(V, seed=1)
    c, blank = tiny.decoder.context_size, tiny.decoder.blank_id
    got = greedy_search_batch(tiny, enc, lens, 1, lm=lm, lm_scale=1.5)
    for b in range(3):
        ys = [blank] * c
        for t in range(int(lens[b])):
            dec = tiny.decoder(torch.tensor([ys[-c:]]), need_pad=False)[:, -1]
            lp = tiny.joiner(enc[b : b + 1, t], dec).log_softmax(-1)
            hist = ys[c:]
            lm_row = lm.table[hist[-1] if hist else 0][None]
            tok = int(fuse_lm(lp, lm_row, 1.5, blank)[0].argmax())
            if tok != blank:
                ys.append(tok)
        assert got[b] == ys[c:], b
    assert greedy_search(tiny, enc, lens, 1, lm=lm, lm_scale=1.5) == got
    assert modified_beam_search(tiny, enc, lens, 1, lm=lm, lm_scale=1.5) == got
    assert all(blank not in h for h in lm.asked)  # histories are emitted tokens only
    assert got != greedy_search_batch(tiny, enc, lens, 1)  # the LM changed something here
    assert greedy_search_batch(tiny, enc, lens, 1, lm=lm, lm_scale=0.0) == (
        greedy_search_batch(tiny, enc, lens, 1)
    )


def test_lm_fusion_large_beam_is_exact_for_the_fused_model():
    """With LM fusion, a beam holding every hypothesis gives each label sequence the total of
    its paths under the fused per-frame scores (enumerated here)."""
    torch.manual_seed(2)
    model = TinyTransducer(vocab_size=4).eval()
    with torch.no_grad():
        model.joiner.output_linear.weight.mul_(3)
    enc = torch.randn(1, 3, 6) * 2
    lm = _TableLm(4, seed=5)
    c = model.decoder.context_size
    totals: dict[tuple, float] = {}
    for path in itertools.product(range(4), repeat=3):
        ys, logp = [0] * c, 0.0
        for t, tok in enumerate(path):
            dec = model.decoder(torch.tensor([ys]), need_pad=True)[:, -1]
            lp = model.joiner(enc[0, t : t + 1], dec).detach().log_softmax(-1)
            hist = ys[c:]
            lp = fuse_lm(lp, lm.table[hist[-1] if hist else 0][None], 0.8, 0)
            logp += float(lp[0, tok])
            if tok != 0:
                ys.append(tok)
        key = tuple(ys[c:])
        totals[key] = float(
            torch.logaddexp(torch.tensor(totals.get(key, -math.inf)), torch.tensor(logp))
        )
    nbest = modified_beam_search(
        model, enc, torch.tensor([3]), beam=200, return_nbest=True, lm=lm, lm_scale=0.8
    )[0]
    assert len(nbest) == len(totals)
    for toks, lp in nbest:
        assert math.isclose(lp, totals[tuple(toks)], rel_tol=1e-4, abs_tol=1e-4)
