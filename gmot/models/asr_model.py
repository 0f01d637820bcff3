"""The ASR model: Zipformer encoder + transducer / CTC / attention-decoder heads + GM-OT bridge.

``build_model(config)`` builds an :class:`AsrModel` from a :class:`gmot.models.config.ModelConfig`
or its dict form (stored in every checkpoint as ``"model_config"`` so decoding can rebuild the
network; older, partial dicts take the defaults for missing keys). The fields, with their flags
and meaning, are documented on :class:`~gmot.models.config.ModelConfig`: the encoder (a Zipformer
config name or dict for :func:`gmot.models.zipformer.build_encoder`), the heads (transducer, CTC,
attention decoder) and the GM-OT bridge (``gmot_plm_dim`` 0 = no adapter, ``gmot_layer`` the
encoder tap, ``gmot_adapter_hidden``, ``gmot_normalize``, ``gmot_center_plm``, ``gmot_loss`` a
:class:`gmot.ot.GMOTConfig`).

The forward pass returns unscaled per-term losses, each a sum over the batch, plus an ``info``
dict; the training loop applies the scales. The PLM is never needed to decode: the adapter is
only used by the GM-OT term.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmot.models.attention_decoder import AttentionDecoder
from gmot.models.config import ModelConfig
from gmot.ot.costs import center_features


def _build_encoder(spec: Any, num_features: int) -> nn.Module:
    from gmot.models.zipformer import build_encoder

    return build_encoder(spec, num_features=num_features)


def as_model_config(config: ModelConfig | dict) -> ModelConfig:
    """A :class:`ModelConfig` from itself or its (possibly partial, older) dict form."""
    if isinstance(config, ModelConfig):
        return config
    if not isinstance(config, dict):
        raise TypeError(f"model_config must be a ModelConfig or dict; got {type(config).__name__}")
    return ModelConfig.from_dict(config)


def complete_model_config(model_config: dict) -> dict:
    """``model_config`` with every key (defaults for the missing ones), as a plain dict."""
    return as_model_config(model_config).to_dict()


def lengths_to_padding_mask(lens: Tensor, max_len: int) -> Tensor:
    """(B, max_len) bool, True at padded positions."""
    return torch.arange(max_len, device=lens.device)[None, :] >= lens[:, None]


class AsrModel(nn.Module):
    """Encoder + heads + GM-OT bridge (see the module docstring for ``model_config``)."""

    def __init__(self, model_config: ModelConfig | dict) -> None:
        super().__init__()
        cfg = as_model_config(model_config)
        self.config = cfg
        self.model_config = cfg.to_dict()  # the checkpoint form
        V = cfg.vocab_size
        self.vocab_size = V
        self.blank_id = cfg.blank_id
        self.sos_eos_id = cfg.sos_eos_id
        self.encoder = _build_encoder(cfg.encoder_config(), cfg.num_features)
        D = int(self.encoder.output_dim)
        self.encoder_dim = D

        self.decoder = self.joiner = self.simple_am_proj = self.simple_lm_proj = None
        if cfg.use_transducer:
            from gmot.transducer import Decoder, Joiner

            self.decoder = Decoder(V, cfg.decoder_dim, self.blank_id, cfg.context_size)
            self.joiner = Joiner(D, cfg.decoder_dim, cfg.joiner_dim, V)
            self.simple_am_proj = nn.Linear(D, V)
            self.simple_lm_proj = nn.Linear(cfg.decoder_dim, V)
        self.ctc_output = None
        if cfg.use_ctc:
            self.ctc_output = nn.Sequential(nn.Dropout(0.1), nn.Linear(D, V), nn.LogSoftmax(-1))
        self.attention_decoder = None
        if cfg.use_attention_decoder:
            ad = cfg.attention_decoder
            self.attention_decoder = AttentionDecoder(
                V,
                D,
                attention_dim=ad.attention_dim,
                num_heads=ad.num_heads,
                feedforward_dim=ad.feedforward_dim,
                num_layers=ad.num_layers,
                dropout=ad.dropout,
                sos_eos_id=self.sos_eos_id,
                label_smoothing=ad.label_smoothing,
            )

        self.gmot_adapter = None
        self.gmot_loss = None
        if cfg.gmot_plm_dim > 0:
            from gmot.ot import GMOTLoss

            tap_dim = self._tap_dim(cfg.gmot_layer)
            P, H = cfg.gmot_plm_dim, cfg.gmot_adapter_hidden
            if H > 0:
                self.gmot_adapter = nn.Sequential(nn.Linear(tap_dim, H), nn.ReLU(), nn.Linear(H, P))
            else:
                self.gmot_adapter = nn.Linear(tap_dim, P)
            self.gmot_loss = GMOTLoss(cfg.gmot_loss)

    # ------------------------------------------------------------------ encoder
    def _tap_dim(self, layer: int) -> int:
        """Feature dim of the GM-OT tap: the encoder output (-1) or Zipformer stack ``layer``."""
        if layer < 0:
            return self.encoder_dim
        dims = self.encoder.config.encoder_dim
        if layer >= len(dims):
            raise ValueError(f"gmot_layer {layer} >= number of stacks {len(dims)}")
        return int(dims[layer])

    def forward_encoder(self, x: Tensor, x_lens: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, F) fbank, x_lens (B,) -> (encoder_out (B, T', D), encoder_out_lens (B,))."""
        out, out_lens = self.encoder(x, x_lens)
        return out, out_lens

    # ------------------------------------------------------------------ heads
    def _transducer_losses(
        self,
        encoder_out: Tensor,
        encoder_out_lens: Tensor,
        token_ids: list[list[int]],
        prune_range: int,
        am_scale: float,
        lm_scale: float,
    ) -> tuple[Tensor, Tensor]:
        from gmot.transducer import (
            do_rnnt_pruning,
            get_rnnt_prune_ranges,
            rnnt_loss_pruned,
            rnnt_loss_smoothed,
        )

        device = encoder_out.device
        B = len(token_ids)
        y_lens = torch.tensor([len(y) for y in token_ids], dtype=torch.int64, device=device)
        S = max(int(y_lens.max()), 1)
        y = torch.full((B, S), self.blank_id, dtype=torch.int64)
        for b, t in enumerate(token_ids):
            y[b, : len(t)] = torch.tensor(t, dtype=torch.int64)
        y = y.to(device)
        sos_y = F.pad(y, (1, 0), value=self.blank_id)  # (B, S+1)
        decoder_out = self.decoder(sos_y)  # (B, S+1, d)
        boundary = torch.zeros(B, 4, dtype=torch.int64, device=device)
        boundary[:, 2] = y_lens
        boundary[:, 3] = encoder_out_lens
        lm = self.simple_lm_proj(decoder_out)
        am = self.simple_am_proj(encoder_out)
        with torch.autocast(device_type=device.type, enabled=False):
            simple, (px_grad, py_grad) = rnnt_loss_smoothed(
                lm=lm.float(),
                am=am.float(),
                symbols=y,
                termination_symbol=self.blank_id,
                lm_only_scale=lm_scale,
                am_only_scale=am_scale,
                boundary=boundary,
                reduction="sum",
                return_grad=True,
            )
        ranges = get_rnnt_prune_ranges(px_grad, py_grad, boundary, prune_range)
        am_p, lm_p = do_rnnt_pruning(
            self.joiner.encoder_proj(encoder_out), self.joiner.decoder_proj(decoder_out), ranges
        )
        logits = self.joiner(am_p, lm_p, project_input=False)  # (B, T, R, V)
        with torch.autocast(device_type=device.type, enabled=False):
            pruned = rnnt_loss_pruned(
                logits=logits.float(),
                symbols=y,
                ranges=ranges,
                termination_symbol=self.blank_id,
                boundary=boundary,
                reduction="sum",
            )
        return simple, pruned

    def _ctc_loss(
        self, encoder_out: Tensor, encoder_out_lens: Tensor, token_ids: list[list[int]]
    ) -> Tensor:
        logp = self.ctc_output(encoder_out)  # (B, T, V)
        targets = torch.tensor([t for y in token_ids for t in y], dtype=torch.int64)
        tlens = torch.tensor([len(y) for y in token_ids], dtype=torch.int64)
        with torch.autocast(device_type=encoder_out.device.type, enabled=False):
            return F.ctc_loss(
                logp.float().permute(1, 0, 2),
                targets.to(logp.device),
                encoder_out_lens,
                tlens.to(logp.device),
                blank=self.blank_id,
                reduction="sum",
            )

    def _gmot(
        self, tap: Tensor, tap_lens: Tensor, plm_feats: Tensor, plm_lens: Tensor
    ) -> tuple[Tensor, dict]:
        if plm_feats.ndim != 3 or plm_feats.shape[0] != tap.shape[0]:
            raise ValueError(
                f"plm_feats must be (B={tap.shape[0]}, Lt, {self.config.gmot_plm_dim}); "
                f"got {tuple(plm_feats.shape)}"
            )
        if plm_feats.shape[-1] != self.config.gmot_plm_dim:
            raise ValueError(
                f"plm_feats dim {plm_feats.shape[-1]} != model gmot_plm_dim "
                f"{self.config.gmot_plm_dim}"
            )
        h = self.gmot_adapter(tap)
        z = plm_feats.float().detach()
        if self.config.gmot_center_plm:
            z = center_features(z, plm_lens)
        with torch.autocast(device_type=tap.device.type, enabled=False):
            per_utt, plans, diag = self.gmot_loss(
                h.float(), tap_lens, z, plm_lens, return_diagnostics=True
            )
        if self.config.gmot_normalize == "frames":
            loss = (per_utt * tap_lens.to(per_utt.dtype)).sum()
        else:
            loss = per_utt.sum()
        info = {"gmot_per_utt": per_utt.detach(), "gmot_plan": plans[0].detach()}
        info["gmot_outer_iters"] = float(diag["outer_iters"])
        info["gmot_unconverged"] = 0.0 if diag["outer_converged"] else 1.0
        for k in ("wd", "gw", "plan_entropy", "marginal_err"):
            v = diag.get(k)
            if isinstance(v, Tensor):
                info[f"gmot_{k}"] = v.detach()
        return loss, info

    def forward(
        self,
        x: Tensor,
        x_lens: Tensor,
        token_ids: list[list[int]],
        plm_feats: Tensor | None = None,
        plm_lens: Tensor | None = None,
        *,
        compute_gmot: bool = False,
        prune_range: int = 5,
        am_scale: float = 0.0,
        lm_scale: float = 0.25,
    ) -> dict[str, Any]:
        """Per-term training losses.

        Args:
          x: (B, T, F) fbank; x_lens (B,) valid frames.
          token_ids: B lists of token ids (no blank/sos/eos).
          plm_feats: (B, Lt, P) PLM token features (zero padded), plm_lens (B,); needed only when
            ``compute_gmot``.
          compute_gmot: run the adapter and the GM-OT loss (False = no cost at all).
          prune_range, am_scale, lm_scale: pruned RNN-T settings (smoothed simple loss).
        Returns:
          dict with (each a float32 scalar summed over the batch, present when the head is on):
          ``"simple"``, ``"pruned"`` (transducer), ``"ctc"``, ``"attention"``, ``"gmot"``; and
          ``"info"``: ``frames`` (sum of encoder_out_lens), ``tokens``, ``utterances``, GM-OT
          diagnostics (``gmot_wd`` ... per utterance) and ``gmot_plan`` (La, Lt) of utterance 0.
        """
        if x.ndim != 3:
            raise ValueError(f"x must be (B, T, F); got {tuple(x.shape)}")
        if x_lens.shape != (x.shape[0],):
            raise ValueError(f"x_lens must be ({x.shape[0]},); got {tuple(x_lens.shape)}")
        if len(token_ids) != x.shape[0]:
            raise ValueError(f"{len(token_ids)} token lists for a batch of {x.shape[0]}")
        for b, y in enumerate(token_ids):
            if any(t <= 0 or t >= self.vocab_size for t in y) or self.blank_id in y:
                raise ValueError(
                    f"token_ids[{b}] has ids outside [1, {self.vocab_size}) or the blank: {y}"
                )
        want_stacks = compute_gmot and self.config.gmot_layer >= 0
        if want_stacks:
            enc_out, enc_lens, stacks = self.encoder(x, x_lens, return_stack_outputs=True)
        else:
            enc_out, enc_lens = self.encoder(x, x_lens)
        out: dict[str, Any] = {}
        info: dict[str, Any] = {
            "frames": int(enc_lens.sum()),
            "tokens": sum(len(y) for y in token_ids),
            "utterances": len(token_ids),
        }
        if self.decoder is not None:
            out["simple"], out["pruned"] = self._transducer_losses(
                enc_out, enc_lens, token_ids, prune_range, am_scale, lm_scale
            )
        if self.ctc_output is not None:
            out["ctc"] = self._ctc_loss(enc_out, enc_lens, token_ids)
        if self.attention_decoder is not None:
            out["attention"] = self.attention_decoder(enc_out, enc_lens, token_ids)
        if compute_gmot:
            if self.gmot_loss is None:
                raise ValueError(
                    "compute_gmot=True but the model has no GM-OT adapter (gmot_plm_dim=0)"
                )
            if plm_feats is None or plm_lens is None:
                raise ValueError("compute_gmot=True needs plm_feats and plm_lens in the batch")
            if want_stacks:
                tap, tap_lens = stacks[self.config.gmot_layer]
            else:
                tap, tap_lens = enc_out, enc_lens
            out["gmot"], ginfo = self._gmot(tap, tap_lens, plm_feats, plm_lens.to(tap.device))
            info.update(ginfo)
            info["gmot_frames"] = int(tap_lens.sum())
        out["info"] = info
        return out


def build_model(model_config: ModelConfig | dict) -> AsrModel:
    """Build an :class:`AsrModel` from a :class:`ModelConfig` or its (partial) dict form."""
    return AsrModel(as_model_config(model_config))
