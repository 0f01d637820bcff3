"""CTC prefix lattices (gmot.decoding.ctc_prefix) and joint greedy search with them."""

import math

import pytest
import torch
import torch.nn.functional as F
from tiny_transducer import TableModel

from gmot.decoding.ctc_prefix import CtcPrefixLattice
from gmot.decoding.ctc_search import ctc_greedy_search
from gmot.decoding.transducer_search import greedy_search_batch


def _log_probs(B, T, V, seed):
    g = torch.Generator().manual_seed(seed)
    return (1.5 * torch.randn(B, T, V, generator=g)).log_softmax(-1)


def _drive(lat, hyps, emissions, T, context_size=1):
    """Run the lattice over T frames, emitting emissions[b][t] (or nothing) on frame t."""
    for t in range(T):
        lat.scores(len(hyps), t)
        out = {b: em[t] for b, em in enumerate(emissions) if t in em}
        lat.commit(len(hyps), t, out)
        for b, y in out.items():
            hyps[b].append(y)


@pytest.mark.parametrize("labels", [[3], [2, 4, 1], [2, 2, 3], [1, 1, 1]])
def test_lattice_total_is_the_ctc_probability(labels):
    """Labels emitted on frames 0, 1, ..., U-1 constrain nothing (a CTC alignment cannot start
    label k before frame k), so after the last frame the lattice holds the CTC probability of
    the whole sequence: torch's ctc_loss is the independent reference (repeats included)."""
    T, V = 7, 5
    lp = _log_probs(1, T, V, seed=len(labels) + sum(labels))
    lat = CtcPrefixLattice(lp, 1.0, blank_id=0, max_labels=T)
    _drive(lat, [[0]], [{k: y for k, y in enumerate(labels)}], T)
    got = float(lat.total()[0])
    want = -float(
        F.ctc_loss(lp.transpose(0, 1), torch.tensor([labels]), torch.tensor([T]),
                   torch.tensor([len(labels)]), blank=0, reduction="sum")
    )  # fmt: skip
    assert got == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_scores_are_the_change_of_the_prefix_probability():
    """Each decision's score is w * (log P_t(new prefix) - log P_{t-1}(prefix)); checked
    against ctc_loss-free enumeration: the blank score chains to the total of the kept
    prefix, and summing the chosen decisions' scores gives w * log P_T(final hypothesis)."""
    T, V, w = 6, 4, 0.7
    lp = _log_probs(1, T, V, seed=11)
    lat = CtcPrefixLattice(lp, w, blank_id=0, max_labels=T)
    hyp, total = [0], 0.0
    plan = {0: 2, 2: 2, 3: 1}  # repeat 2 2 separated by a frame, then 1
    for t in range(T):
        s = lat.scores(1, t)
        y = plan.get(t, 0)
        total += float(s[0, y])
        lat.commit(1, t, {0: y} if y else {})
        if y:
            hyp.append(y)
    final = float(lat.total()[0])
    assert total == pytest.approx(w * final, rel=1e-5, abs=1e-5)
    # the same, computed by brute force over CTC alignments with those start constraints
    # (label k may start no earlier than its emission frame)
    labels, starts = [2, 2, 1], [0, 2, 3]
    paths = 0.0
    import itertools

    for path in itertools.product(range(V), repeat=T):
        collapsed, first = [], []
        prev = 0
        for t, s_ in enumerate(path):
            if s_ != 0 and s_ != prev:
                collapsed.append(s_)
                first.append(t)
            prev = s_
        if collapsed == labels and all(f >= s0 for f, s0 in zip(first, starts)):
            paths += math.exp(sum(float(lp[0, t, s_]) for t, s_ in enumerate(path)))
    assert final == pytest.approx(math.log(paths), rel=1e-5, abs=1e-5)


def test_second_symbol_on_a_frame_has_no_ctc_support():
    lp = _log_probs(1, 3, 4, seed=2)
    lat = CtcPrefixLattice(lp, 1.0, 0, 3)
    lat.scores(1, 0)
    lat.commit(1, 0, {0: 2})
    again = lat.scores(1, 0)
    assert again[0, 0] == 0 and torch.isinf(again[0, 1:]).all()
    with pytest.raises(ValueError, match="> 0"):
        CtcPrefixLattice(lp, 0.0, 0, 3)


def _spiky_ctc(T, V, spikes, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, T, V, generator=g)
    logits[..., 0] += 8.0
    for t, tok in spikes.items():
        logits[0, t, tok] += 16.0
    return logits.log_softmax(-1)


def test_an_early_transducer_emission_is_not_doubled():
    """The transducer emits 3 on frame 1 (and then prefers blank); the CTC head spikes 3 on
    frame 3. The per-frame product emits 3 twice; prefix scores emit it once."""
    T, V = 6, 5
    table = torch.zeros(T, V, V)
    table[:, :, 0] = 2.0  # blank preferred
    table[1, 0, 3] = 20.0  # confident early emission of 3 (after nothing)
    model = TableModel(table)
    enc, lens = model.encoder_out()
    ctc = _spiky_ctc(T, V, {3: 3})
    frame = greedy_search_batch(model, enc, lens, 1, ctc_scores=1.5 * ctc)
    prefix = greedy_search_batch(model, enc, lens, 1, ctc_log_probs=ctc, ctc_prefix_weight=1.5)
    assert frame == [[3, 3]]
    assert prefix == [[3]]


def test_large_weight_follows_the_ctc_head_and_batches_agree():
    """With a large weight the decisions are the CTC head's (repeats need a blank between,
    as in CTC); rows decoded together or alone give the same result."""
    T, V = 9, 6
    torch.manual_seed(0)
    table = torch.randn(T, V, V)
    model = TableModel(table)
    enc, lens = model.encoder_out()
    for spikes in ({1: 3, 4: 3, 7: 2}, {0: 1, 1: 1, 5: 4}, {2: 5}):
        ctc = _spiky_ctc(T, V, spikes, seed=len(spikes))
        got = greedy_search_batch(model, enc, lens, 1, ctc_log_probs=ctc, ctc_prefix_weight=1e3)
        assert got == ctc_greedy_search(ctc, lens)
    # weight 0: the transducer alone
    assert greedy_search_batch(model, enc, lens, 1, ctc_log_probs=ctc, ctc_prefix_weight=0.0) == (
        greedy_search_batch(model, enc, lens, 1)
    )


def test_modified_beam_search_with_prefix_scores():
    """Beam 1 is greedy search with the same prefix scores; the early emission is not doubled
    at any beam; each hypothesis' score is its transducer path plus w * log P_T(h) when
    nothing merged (checked on the 1-best of a beam-1 search)."""
    from gmot.decoding.transducer_search import modified_beam_search

    T, V = 9, 6
    torch.manual_seed(3)
    model = TableModel(torch.randn(T, V, V) * 2)
    enc, lens = model.encoder_out()
    for seed in range(4):
        ctc = _log_probs(1, T, V, seed=seed)
        kw = dict(ctc_log_probs=ctc, ctc_prefix_weight=1.2)
        assert modified_beam_search(model, enc, lens, 1, **kw) == greedy_search_batch(
            model, enc, lens, 1, **kw
        )
    table = torch.zeros(6, 5, 5)
    table[:, :, 0] = 2.0
    table[1, 0, 3] = 20.0
    model = TableModel(table)
    enc, lens = model.encoder_out()
    ctc = _spiky_ctc(6, 5, {3: 3})
    assert modified_beam_search(model, enc, lens, 1, ctc_scores=1.5 * ctc) == [[3, 3]]
    for beam in (1, 3):
        got = modified_beam_search(model, enc, lens, beam, ctc_log_probs=ctc, ctc_prefix_weight=1.5)
        assert got == [[3]], beam
    # the 1-best score of beam 1: transducer log-probs of the path + w * lattice total
    ctc = _log_probs(1, 6, 5, seed=9)
    (best,) = modified_beam_search(
        model, enc, lens, 1, return_nbest=True, ctc_log_probs=ctc, ctc_prefix_weight=0.8
    )
    toks, score = best[0]
    lat = CtcPrefixLattice(ctc, 0.8, 0, 6)
    hyp, path = [0], 0.0
    for t in range(6):
        lp = model.joiner(enc[:, t], model.decoder(torch.tensor([[hyp[-1]]]))[:, -1]).log_softmax(
            -1
        )
        s = lp[0] + lat.scores(1, t)[0]
        y = int(s.argmax())
        path += float(lp[0, y])
        lat.commit(1, t, {0: y} if y else {})
        if y:
            hyp.append(y)
    assert hyp[1:] == toks
    assert score == pytest.approx(path + 0.8 * float(lat.total()[0]), rel=1e-5, abs=1e-5)
