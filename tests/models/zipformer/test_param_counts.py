"""Parameter counts of the named configs vs icefall's published whole-transducer counts.

Encoder counts (front end included) of our build: small 21,986,835; medium 63,988,343;
large 146,616,250. Adding the transducer head (stateless decoder, joiner, simple projections;
decoder_dim = joiner_dim = 512) gives, against the published (rounded) totals:

    V=500  (context 2): small 23,282,671 vs 23.3M   (-17,329, -0.074%)
                        medium 65,543,251 vs 65.55M (-6,749, -0.010%)
                        large 148,430,230 vs 148.4M (+30,230, +0.020%)
    V=4336 (context 1): small 30,164,195 vs 30.17M  (-5,805, -0.019%)
                        medium 73,406,791 vs 73.41M (-3,209, -0.004%)
                        large 157,275,786 vs 157.29M (-14,214, -0.009%)

All differences are within the rounding of the published figures (<= 0.074%); the test asserts
0.1%.
"""

import pytest
import torch

from gmot.models.zipformer import build_encoder

PUBLISHED = {
    ("small", 500): 23.3e6,
    ("medium", 500): 65.55e6,
    ("large", 500): 148.4e6,
    ("small", 4336): 30.17e6,
    ("medium", 4336): 73.41e6,
    ("large", 4336): 157.29e6,
}
ENCODER = {"small": 21_986_835, "medium": 63_988_343, "large": 146_616_250}


def head_params(enc_dim: int, vocab: int, context: int, d: int = 512) -> int:
    """Analytic count of decoder + joiner + simple projections (biases included)."""
    decoder = vocab * d + (d * (d // (d // 4)) * context if context > 1 else 0)
    joiner = (enc_dim * d + d) + (d * d + d) + (d * vocab + vocab)
    simple = (enc_dim * vocab + vocab) + (d * vocab + vocab)
    return decoder + joiner + simple


@pytest.fixture(scope="module")
def encoder_counts():
    counts = {}
    with torch.device("meta"):
        for name in ("small", "medium", "large"):
            enc = build_encoder(name)
            counts[name] = (sum(p.numel() for p in enc.parameters()), enc.output_dim)
    return counts


def test_encoder_counts_are_stable(encoder_counts):
    assert {k: v[0] for k, v in encoder_counts.items()} == ENCODER


@pytest.mark.parametrize("name,vocab", sorted(PUBLISHED))
def test_whole_transducer_matches_published(encoder_counts, name, vocab):
    enc_params, enc_dim = encoder_counts[name]
    context = 2 if vocab == 500 else 1
    total = enc_params + head_params(enc_dim, vocab, context)
    rel = (total - PUBLISHED[(name, vocab)]) / PUBLISHED[(name, vocab)]
    assert abs(rel) < 1e-3, (name, vocab, total, rel)


def test_head_formula_matches_transducer_modules():
    """Cross-check the analytic head count against gmot.transducer's modules when present."""
    transducer = pytest.importorskip("gmot.transducer")
    for vocab, context in ((500, 2), (4336, 1)):
        dec = transducer.Decoder(vocab, 512, blank_id=0, context_size=context)
        joiner = transducer.Joiner(256, 512, 512, vocab)
        simple = torch.nn.Linear(256, vocab).weight.numel() + vocab + 512 * vocab + vocab
        n = sum(p.numel() for p in dec.parameters()) + sum(p.numel() for p in joiner.parameters())
        assert n + simple == head_params(256, vocab, context)
