"""Transducer joiner: ``output_linear(tanh(encoder_proj(e) + decoder_proj(d)))``.

``Joiner(encoder_dim E, decoder_dim D, joiner_dim J, vocab_size V)``: three linears with bias,
parameter count ``(E + 1) * J + (D + 1) * J + (J + 1) * V``. For pruned RNN-T the projections
are applied before pruning (``project_input=False`` then takes already-projected inputs).

A full icefall-style transducer head also has the simple-loss projections (owned by the model,
not by this module): ``simple_am_proj = Linear(E, V)`` and ``simple_lm_proj = Linear(D, V)``,
``(E + 1) * V + (D + 1) * V`` parameters; the decoder's count is in ``decoder.py``.
"""

from __future__ import annotations

from torch import Tensor, nn


class Joiner(nn.Module):
    """Transducer joiner: ``output_linear(tanh(encoder_proj(e) + decoder_proj(d)))``.

    Args:
      encoder_dim: E, the encoder output dimension.
      decoder_dim: D, the decoder (prediction network) output dimension.
      joiner_dim: J, the dimension both are projected to.
      vocab_size: V, the number of output symbols (blank included).

    ``forward(encoder_out (..., E or J), decoder_out (..., D or J), project_input=True)
    -> logits (..., V)``; encoder_out and decoder_out broadcast against each other.
    """

    def __init__(self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int):
        super().__init__()
        for name, v in (
            ("encoder_dim", encoder_dim),
            ("decoder_dim", decoder_dim),
            ("joiner_dim", joiner_dim),
            ("vocab_size", vocab_size),
        ):
            if v <= 0:
                raise ValueError(f"{name} must be > 0, got {v}")
        self.encoder_dim = encoder_dim
        self.decoder_dim = decoder_dim
        self.joiner_dim = joiner_dim
        self.vocab_size = vocab_size
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.decoder_proj = nn.Linear(decoder_dim, joiner_dim)
        self.output_linear = nn.Linear(joiner_dim, vocab_size)

    @staticmethod
    def num_params(encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int) -> int:
        """Parameter count by formula (see module docstring)."""
        return (
            (encoder_dim + 1) * joiner_dim
            + (decoder_dim + 1) * joiner_dim
            + (joiner_dim + 1) * vocab_size
        )

    def forward(
        self, encoder_out: Tensor, decoder_out: Tensor, project_input: bool = True
    ) -> Tensor:
        """Unnormalised logits over the vocabulary for each encoder/decoder pair.

        Args:
          encoder_out: (..., E), or (..., J) already projected; e.g. (B, T, 1, E) for the
            full lattice or (B, T, s_range, J) from :func:`gmot.transducer.do_rnnt_pruning`.
          decoder_out: (..., D), or (..., J) already projected; broadcasts against
            ``encoder_out`` (e.g. (B, 1, S+1, D)).
          project_input: apply ``encoder_proj`` / ``decoder_proj`` first; False when the
            inputs are already projected (the pruned loss projects before pruning).
        Returns:
          logits (..., vocab_size), the broadcast shape of the inputs' leading dimensions.
        """
        e_dim = self.encoder_dim if project_input else self.joiner_dim
        d_dim = self.decoder_dim if project_input else self.joiner_dim
        if encoder_out.shape[-1] != e_dim:
            raise ValueError(
                f"encoder_out last dim must be {e_dim} (project_input="
                f"{project_input}), got {tuple(encoder_out.shape)}"
            )
        if decoder_out.shape[-1] != d_dim:
            raise ValueError(
                f"decoder_out last dim must be {d_dim} (project_input="
                f"{project_input}), got {tuple(decoder_out.shape)}"
            )
        if project_input:
            logit = self.encoder_proj(encoder_out) + self.decoder_proj(decoder_out)
        else:
            logit = encoder_out + decoder_out
        return self.output_linear(logit.tanh())
