"""AsrModel: heads against independent references, GM-OT bridge (off = no cost, tapped stack),
config checks, checkpoint round trip through the decoding loader."""

from __future__ import annotations

import argparse

import pytest
import torch
import torchaudio

from gmot.models.asr_model import build_model
from gmot.ot import GMOTLoss

V = 10


def cfg(**kw) -> dict:
    c = dict(vocab_size=V, encoder="tiny", decoder_dim=16, joiner_dim=16)
    c.update(kw)
    return c


def batch(B: int = 2):
    torch.manual_seed(1)
    x = torch.randn(B, 90, 80)
    x_lens = torch.tensor([90, 70])[:B]
    y = [[3, 4, 5], [6, 7]][:B]
    plm = torch.randn(B, 3, 8)
    plm_lens = torch.tensor([3, 2])[:B]
    return x, x_lens, y, plm, plm_lens


def test_pruned_loss_with_full_range_equals_torchaudio_rnnt():
    torch.manual_seed(0)
    m = build_model(cfg()).eval()
    x, x_lens, y, _, _ = batch()
    with torch.no_grad():
        out = m(x, x_lens, y, prune_range=4)  # S + 1 = 4: no pruning
        enc, enc_lens = m.forward_encoder(x, x_lens)
        ys = torch.tensor([[3, 4, 5], [6, 7, 0]])
        dec = m.decoder(torch.nn.functional.pad(ys, (1, 0), value=0))
        logits = m.joiner(enc[:, :, None, :], dec[:, None, :, :])  # (B, T, S+1, V)
        ref = torchaudio.functional.rnnt_loss(
            logits,
            ys.int(),
            enc_lens.int(),
            torch.tensor([3, 2]).int(),
            blank=0,
            reduction="sum",
        )
    torch.testing.assert_close(out["pruned"], ref, rtol=1e-4, atol=1e-3)
    assert out["info"]["frames"] == int(enc_lens.sum())
    assert set(out) == {"simple", "pruned", "info"}


def test_ctc_head_matches_torch_ctc_on_its_log_probs():
    torch.manual_seed(0)
    m = build_model(cfg(use_transducer=False, use_ctc=True)).eval()
    x, x_lens, y, _, _ = batch()
    with torch.no_grad():
        out = m(x, x_lens, y)
        enc, enc_lens = m.forward_encoder(x, x_lens)
        lp = m.ctc_output(enc)
        ref = sum(
            torch.nn.functional.ctc_loss(
                lp[b, : enc_lens[b]],
                torch.tensor(y[b]),
                enc_lens[b : b + 1],
                torch.tensor([len(y[b])]),
                reduction="sum",
            )
            for b in range(2)
        )
    assert lp.shape == (2, enc.shape[1], V)
    torch.testing.assert_close(out["ctc"], ref, rtol=1e-5, atol=1e-4)


def test_gmot_off_costs_nothing_and_on_matches_gmot_loss():
    torch.manual_seed(0)
    m = build_model(cfg(gmot_plm_dim=8)).eval()
    base = build_model(cfg())
    n_adapter = sum(p.numel() for p in m.gmot_adapter.parameters())
    assert (
        sum(p.numel() for p in m.parameters())
        == sum(p.numel() for p in base.parameters()) + n_adapter
    )
    x, x_lens, y, plm, plm_lens = batch()

    def boom(*a, **k):
        raise AssertionError("GM-OT computed although off")

    orig_adapter, orig_loss = m.gmot_adapter.forward, m.gmot_loss.forward
    m.gmot_adapter.forward, m.gmot_loss.forward = boom, boom
    out = m(x, x_lens, y, compute_gmot=False)
    assert "gmot" not in out
    m.gmot_adapter.forward, m.gmot_loss.forward = orig_adapter, orig_loss
    with torch.no_grad():
        out = m(x, x_lens, y, plm, plm_lens, compute_gmot=True)
        enc, enc_lens = m.forward_encoder(x, x_lens)
        per_utt, plans = GMOTLoss(alpha=0.5, epsilon=0.1)(
            m.gmot_adapter(enc), enc_lens, plm, plm_lens
        )
    torch.testing.assert_close(out["gmot"], (per_utt * enc_lens).sum(), rtol=1e-4, atol=1e-4)
    assert out["info"]["gmot_plan"].shape == plans[0].shape
    assert out["info"]["gmot_plan_entropy"].shape == (2,)


def test_gmot_taps_intermediate_stack():
    torch.manual_seed(0)
    m = build_model(cfg(gmot_plm_dim=8, gmot_layer=1, gmot_adapter_hidden=12)).eval()
    x, x_lens, y, plm, plm_lens = batch()
    with torch.no_grad():
        _, _, stacks = m.encoder(x, x_lens, return_stack_outputs=True)
        out = m(x, x_lens, y, plm, plm_lens, compute_gmot=True)
    tap, tap_lens = stacks[1]
    assert m.gmot_adapter[0].in_features == tap.shape[-1]
    assert out["info"]["gmot_plan"].shape == (tap.shape[1], 3)
    assert out["info"]["gmot_frames"] == int(tap_lens.sum())


def test_gmot_center_plm_uses_batch_centred_targets():
    torch.manual_seed(0)
    m = build_model(cfg(gmot_plm_dim=8, gmot_center_plm=True)).eval()
    x, x_lens, y, plm, plm_lens = batch()
    plm = plm + 5.0 * torch.ones(8)  # a large common component, as in real PLM states
    for b, n in enumerate(plm_lens.tolist()):
        plm[b, n:] = 0.0
    # the centred targets, computed independently: mean over the valid tokens only
    valid = torch.cat([plm[b, :n] for b, n in enumerate(plm_lens.tolist())])
    centred = plm - valid.mean(dim=0)
    for b, n in enumerate(plm_lens.tolist()):
        centred[b, n:] = 0.0
    with torch.no_grad():
        out = m(x, x_lens, y, plm, plm_lens, compute_gmot=True)
        enc, enc_lens = m.forward_encoder(x, x_lens)
        per_utt, _ = GMOTLoss(alpha=0.5, epsilon=0.1)(
            m.gmot_adapter(enc), enc_lens, centred, plm_lens
        )
        raw, _ = GMOTLoss(alpha=0.5, epsilon=0.1)(m.gmot_adapter(enc), enc_lens, plm, plm_lens)
    torch.testing.assert_close(out["gmot"], (per_utt * enc_lens).sum(), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(per_utt, raw, rtol=1e-3)


def test_config_and_input_errors():
    with pytest.raises(ValueError, match="unknown keys"):
        build_model(cfg(bogus=1))
    with pytest.raises(ValueError, match="no head"):
        build_model(cfg(use_transducer=False))
    m = build_model(cfg(gmot_plm_dim=8))
    x, x_lens, y, plm, plm_lens = batch()
    with pytest.raises(ValueError, match="plm_feats dim 5"):
        m(x, x_lens, y, plm[..., :5], plm_lens, compute_gmot=True)
    with pytest.raises(ValueError, match="token_ids\\[1\\]"):
        m(x, x_lens, [[3], [V]])
    with pytest.raises(ValueError, match="x_lens"):
        m(x, x_lens[:1], y)


def test_checkpoint_round_trip_through_decoding_loader(tmp_path):
    from gmot.checkpoint import save_checkpoint
    from gmot.decoding.model_loading import load_model

    m = build_model(cfg(use_ctc=True, use_attention_decoder=True, gmot_plm_dim=8))
    save_checkpoint(tmp_path / "epoch-1.pt", model=m, params={"batch_idx_train": 1})
    args = argparse.Namespace(checkpoint=tmp_path / "epoch-1.pt")
    loaded, config, _ = load_model(args)
    assert config == m.model_config
    for k, v in m.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert hasattr(loaded.attention_decoder, "score")


def test_medium_transducer_parameter_count_matches_published():
    """icefall's AISHELL medium Zipformer transducer (4336 chars): 73.41M parameters."""
    m = build_model({"vocab_size": 4336, "encoder": "medium"})
    n = sum(p.numel() for p in m.parameters())
    assert abs(n / 1e6 - 73.41) < 0.01, n
