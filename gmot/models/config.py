"""``ModelConfig``: the settings that define the ASR network, declared once with their flags.

Checkpoints store ``ModelConfig.to_dict()`` under ``"model_config"``; decoding rebuilds the
network with ``build_model(checkpoint["model_config"])``. A dict from an older gmot (partial,
with fewer keys) loads with the defaults below for the missing keys, which are the values older
versions used; a dict with keys this version does not know is refused with a ValueError naming
them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from gmot.models.zipformer.config import ZipformerConfig, get_config, int_tuple
from gmot.ot.config import GMOTConfig
from gmot.settings import setting

#: The streaming fields and their non-streaming values (shared with ZipformerConfig).
_STREAMING_DEFAULTS = {"causal": False, "chunk_size": (-1,), "left_context_frames": (-1,)}

__all__ = ["AttentionDecoderConfig", "ModelConfig"]


def _encoder_from_flag(value: str) -> str | dict:
    """``--encoder-config``: a config name, or a JSON object (``{"base": "tiny", ...}``)."""
    if not value.lstrip().startswith("{"):
        return value
    try:
        d = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--encoder-config is not valid JSON ({exc}): {value!r}") from None
    get_config(d)  # unknown keys or bad values: fail here, naming them
    return d


def _frames_setting(help: str, flag: str) -> Any:
    """A streaming list of 50 Hz frame counts: ``(-1,)`` by default, a comma list as a flag."""
    return setting(
        (-1,),
        help,
        flag=flag,
        type=str,
        flag_default="-1",
        from_flag=lambda v: int_tuple(v, flag),
    )


@dataclass(frozen=True)
class AttentionDecoderConfig:
    """Sizes of the transformer attention decoder (:class:`gmot.models.AttentionDecoder`)."""

    attention_dim: int = setting(
        256, "Attention decoder model dim.", flag="--attention-decoder-dim"
    )
    num_heads: int = setting(4, "Attention decoder heads.", flag="--attention-decoder-num-heads")
    feedforward_dim: int = setting(
        1024, "Attention decoder FF dim.", flag="--attention-decoder-ff-dim"
    )
    num_layers: int = setting(2, "Attention decoder layers.", flag="--attention-decoder-num-layers")
    dropout: float = setting(0.1, "Attention decoder dropout.", flag="--attention-decoder-dropout")
    label_smoothing: float = setting(
        0.1, "Attention decoder label smoothing.", flag="--label-smoothing"
    )


@dataclass(frozen=True)
class ModelConfig:
    """Everything :func:`gmot.models.asr_model.build_model` needs (see the module docstring)."""

    vocab_size: int = setting(
        help="Output symbols (blank included).", derived="max id + 1 of <lang-dir>/tokens.txt"
    )
    blank_id: int = setting(0, "Blank symbol id.", derived="fixed by the token table (<blk> 0)")
    sos_eos_id: int = setting(
        1, "Start/end symbol of the attention decoder.", derived="token table (<sos/eos> 1)"
    )
    num_features: int = setting(
        80,
        "Input features per frame (fbank bins, plus pitch features).",
        derived="the data module: 80, 83 with --pitch 1",
    )
    encoder: str | dict = setting(
        "medium",
        "Zipformer configuration: tiny, small, medium or large, or a JSON object of "
        "ZipformerConfig fields, optionally over a named base, e.g. "
        '\'{"base": "tiny", "input_norm": "utterance", "dropout": 0.05}\'.',
        flag="--encoder-config",
        type=str,
        from_flag=_encoder_from_flag,
    )
    causal: bool = setting(
        False,
        "Streaming: a causal Zipformer (causal convolutions, chunk-wise attention with limited "
        "left context; docs/streaming.md).",
        flag="--causal",
    )
    chunk_size: tuple[int, ...] = _frames_setting(
        "Streaming chunk sizes in frames at 50 Hz, comma list (-1 = whole utterance; needs "
        "--causal 1): training draws one per batch, decoding uses the first. E.g. 16,32,64,-1.",
        "--chunk-size",
    )
    left_context_frames: tuple[int, ...] = _frames_setting(
        "Streaming attention left context in frames at 50 Hz, comma list (-1 = unlimited; "
        "needs --causal 1): drawn per batch in training, the first in decoding. "
        "E.g. 64,128,256,-1.",
        "--left-context-frames",
    )
    use_transducer: bool = setting(True, "Train the pruned RNN-T head.", flag="--use-transducer")
    use_ctc: bool = setting(False, "Train a CTC head.", flag="--use-ctc")
    use_attention_decoder: bool = setting(
        False,
        "Train a transformer attention-decoder head (for n-best rescoring).",
        flag="--use-attention-decoder",
    )
    decoder_dim: int = setting(512, "Stateless decoder embedding dim.", flag="--decoder-dim")
    joiner_dim: int = setting(512, "Joiner hidden dim.", flag="--joiner-dim")
    context_size: int = setting(1, "Decoder context (1 for characters).", flag="--context-size")
    attention_decoder: AttentionDecoderConfig = setting(default_factory=AttentionDecoderConfig)
    gmot_plm_dim: int = setting(
        0,
        "Dimension of the PLM token features (batch['plm_feats'] last dim); the model has a "
        "GM-OT adapter only when > 0 (training sets 0 when --gmot-loss-scale is 0).",
        flag="--gmot-plm-dim",
        flag_default=768,
    )
    gmot_layer: int = setting(
        -1,
        "Encoder tap: -1 = final output, k >= 0 = output of Zipformer stack k.",
        flag="--gmot-layer",
    )
    gmot_adapter_hidden: int = setting(
        0,
        "0: the adapter is one Linear; > 0: Linear-ReLU-Linear with this hidden size.",
        flag="--gmot-adapter-hidden",
    )
    gmot_normalize: str = setting(
        "frames",
        "frames: OT distance x tapped frames (a per-frame sum like the ASR losses); "
        "utterance: plain sum over utterances.",
        flag="--gmot-normalize",
        choices=("frames", "utterance"),
    )
    gmot_center_plm: bool = setting(
        False,
        "Subtract the batch mean of the PLM token features before the GM-OT costs (PLM states "
        "share a large common component, which makes 1 - cos costs nearly constant and the "
        "plans nearly uniform).",
        flag="--gmot-center-plm",
    )
    gmot_loss: GMOTConfig = setting(default_factory=GMOTConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.vocab_size, int) or self.vocab_size <= 2:
            raise ValueError(
                f"model_config['vocab_size'] must be an int > 2; got {self.vocab_size}"
            )
        if not (self.use_transducer or self.use_ctc or self.use_attention_decoder):
            raise ValueError("model_config enables no head (use_transducer/use_ctc/...)")
        if self.use_attention_decoder and not (self.use_transducer or self.use_ctc):
            raise ValueError(
                "the attention decoder alone cannot decode; enable transducer or CTC too"
            )
        if self.gmot_normalize not in ("frames", "utterance"):
            raise ValueError(
                f"gmot_normalize must be 'frames' or 'utterance'; got {self.gmot_normalize!r}"
            )
        for name in ("chunk_size", "left_context_frames"):  # lists from JSON, strings from flags
            object.__setattr__(self, name, int_tuple(getattr(self, name), name))
        if self._streaming() != _STREAMING_DEFAULTS:
            try:
                self.encoder_config()
            except ValueError as exc:
                raise ValueError(
                    f"model_config streaming options (--causal, --chunk-size, "
                    f"--left-context-frames): {exc}"
                ) from None

    def _streaming(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _STREAMING_DEFAULTS}

    def encoder_config(self) -> ZipformerConfig:
        """The encoder's :class:`ZipformerConfig`: ``encoder`` (a name or a dict) with
        ``causal``, ``chunk_size`` and ``left_context_frames`` applied when they are set.

        Raises:
            ValueError: for invalid values, or when both ``encoder`` (a dict) and these fields
                set the streaming options.
        """
        base = get_config(self.encoder)
        streaming = self._streaming()
        if streaming == _STREAMING_DEFAULTS:
            return base
        if isinstance(self.encoder, dict) and set(self.encoder) & set(streaming):
            raise ValueError(
                "the streaming options are set twice: in the encoder dict "
                f"({sorted(set(self.encoder) & set(streaming))}) and as model_config fields; "
                "set them in one place"
            )
        return dataclasses.replace(base, **streaming)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (what checkpoints store under ``"model_config"``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """From a (possibly partial, possibly older) dict; missing keys take the defaults.

        Raises:
            ValueError: for unknown keys (named) or invalid values.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(
                f"model_config has unknown keys {sorted(unknown)} (written by a newer gmot?); "
                f"known: {sorted(names)}"
            )
        kw = dict(d)
        ad = kw.get("attention_decoder")
        if isinstance(ad, dict):
            kw["attention_decoder"] = AttentionDecoderConfig(**ad)
        gl = kw.get("gmot_loss")
        if isinstance(gl, dict):
            kw["gmot_loss"] = GMOTConfig.from_dict(gl)
        if "vocab_size" not in kw:
            raise ValueError("model_config needs 'vocab_size'")
        return cls(**kw)
