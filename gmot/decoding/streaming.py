"""Streaming transducer decoding with a causal Zipformer (issue 23).

Each utterance is a :class:`DecodeStream`: its encoder states, the fbank frames it has received
but not yet consumed, the transducer search state (greedy: the hypothesis and its decoder
output; modified beam search: the beam) and the number of frames processed. Streams advance
together: :func:`decode_one_chunk` stacks the ready streams (possibly at different positions in
utterances of different lengths) into one batch, runs one
:meth:`~gmot.models.zipformer.Zipformer.streaming_forward` on their next chunk and advances the
search over the chunk's frames with the offline search steps of
:mod:`gmot.decoding.transducer_search` (:func:`greedy_search_advance`,
:func:`modified_beam_search_advance`), so the search state carries over from chunk to chunk.
When a stream's input has ended, its last chunk is zero-padded (the 13 right-padding
look-ahead frames included). The hypotheses equal the offline search on the eval-mode
(simulated streaming) encoder output of the same model.

:func:`apply_chunk_flags` sets the chunk size and left context of a causal model from
``--chunk-size`` / ``--left-context-frames`` (``decode.py`` and ``streaming_decode.py``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator
from typing import TypeVar

import torch
from torch import nn

from gmot.decoding.features import MIN_ENCODER_FRAMES
from gmot.decoding.transducer_search import (
    beam_best,
    greedy_search_advance,
    init_beam,
    init_greedy_state,
    modified_beam_search_advance,
)

#: The searches that run chunk by chunk.
STREAMING_METHODS = ("greedy_search", "modified_beam_search")

K = TypeVar("K")


def add_chunk_arguments(parser) -> None:
    """``--chunk-size`` and ``--left-context-frames`` (an ``argparse`` parser or group)."""
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="Causal models only: chunk size in frames at 50 Hz (a multiple of 8, e.g. 32 = "
        "0.64 s) instead of the model's first --chunk-size value; named in the result files.",
    )
    parser.add_argument(
        "--left-context-frames",
        type=int,
        default=None,
        help="Causal models only: attention left context in frames at 50 Hz (a multiple of 8, "
        "e.g. 128) instead of the model's first value; named in the result files.",
    )


def apply_chunk_flags(
    model: nn.Module,
    chunk_size: int | None,
    left_context_frames: int | None,
    checkpoint: str,
    streaming: bool = False,
) -> str:
    """Set a causal model's chunk size and left context (eval mode and streaming use the first
    value of each) from the flags, and name them for the result files.

    Args:
      model: an ``AsrModel`` (its ``encoder`` a Zipformer); changed in place.
      chunk_size, left_context_frames: the flag values (50 Hz frames), None = the model's own.
      checkpoint: how error messages name the model (its checkpoint files).
      streaming: for chunk-by-chunk decoding, which needs a finite chunk and left context.
    Returns:
      ``"-chunk-<C>-left-<L>"`` with the values in effect, ``""`` for a non-causal model.
    Raises:
      ValueError naming the checkpoint (a non-causal model) or the flag (a value the model
      does not allow).
    """
    encoder = getattr(model, "encoder", None)
    config = getattr(encoder, "config", None)
    if not getattr(config, "causal", False):
        if streaming:
            raise ValueError(
                f"streaming decoding needs a causal (streaming) model, but {checkpoint} holds a "
                "non-causal one: train with --causal 1 (e.g. --causal 1 --chunk-size 16,32,64,-1 "
                "--left-context-frames 64,128,256,-1; docs/streaming.md)"
            )
        if chunk_size is not None or left_context_frames is not None:
            raise ValueError(
                f"--chunk-size / --left-context-frames need a causal model, but {checkpoint} "
                "holds a non-causal one (trained without --causal 1)"
            )
        return ""
    values = {"--chunk-size": chunk_size, "--left-context-frames": left_context_frames}
    fields = {"--chunk-size": "chunk_size", "--left-context-frames": "left_context_frames"}
    for flag, value in values.items():
        if value is None:
            values[flag] = getattr(config, fields[flag])[0]
            continue
        try:
            dataclasses.replace(config, **{fields[flag]: (value,)})
        except ValueError as exc:
            raise ValueError(f"{flag} {value} is not allowed by {checkpoint}: {exc}") from None
    if streaming:
        for flag, value in values.items():
            if value <= 0:
                raise ValueError(
                    f"{flag} {value}: streaming needs a positive value (-1 = whole utterance / "
                    f"unlimited cannot be decoded chunk by chunk); give {flag} N"
                )
    chunk, left = values["--chunk-size"], values["--left-context-frames"]
    encoder.config = dataclasses.replace(config, chunk_size=(chunk,), left_context_frames=(left,))
    logging.info(
        "causal model: chunk %d, left context %d frames at 50 Hz (trained with chunk sizes %s, "
        "left contexts %s)",
        chunk,
        left,
        config.chunk_size,
        config.left_context_frames,
    )
    return f"-chunk-{chunk}-left-{left}"


class DecodeStream:
    """One utterance decoded chunk by chunk.

    Feed fbank frames with :meth:`accept_features` (all at once or piece by piece), then call
    :meth:`input_finished`. A chunk needs :attr:`chunk_input_frames` frames from the current
    position (``chunk_shift`` new ones and 13 look-ahead); :attr:`ready` says whether the next
    one can be decoded, :attr:`done` whether the utterance is finished, :attr:`hyp` gives the
    current best token ids.

    Attributes:
      stream_id: the caller's name for the utterance.
      method: ``greedy_search`` or ``modified_beam_search``.
      states: encoder states of this stream (batch size 1, ``Zipformer.get_init_states``).
      pending: (N, F) fbank frames received and not yet consumed (the next chunk starts here).
      num_processed_frames: fbank frames consumed (``chunk_shift`` per decoded chunk).
      num_chunks: chunks decoded; num_encoder_frames: 25 Hz encoder frames searched.
      hyp_state: greedy: the token list (with ``context_size`` leading blanks) and its (1, J)
        decoder output; modified beam search: the beam.
    """

    def __init__(
        self, model: nn.Module, method: str = "greedy_search", stream_id: str = ""
    ) -> None:
        if method not in STREAMING_METHODS:
            raise ValueError(f"streaming method must be one of {STREAMING_METHODS}; got {method!r}")
        encoder = model.encoder
        device = next(model.parameters()).device
        self.stream_id = stream_id
        self.method = method
        self.context_size = model.decoder.context_size
        self.chunk_shift = encoder.chunk_shift
        self.chunk_input_frames = encoder.chunk_input_frames
        self.states = encoder.get_init_states(1, device)
        self.pending = torch.zeros(0, encoder.num_features, device=device)
        self.num_processed_frames = 0
        self.num_chunks = 0
        self.num_encoder_frames = 0
        self.input_done = False
        if method == "greedy_search":
            hyps, dec = init_greedy_state(model, 1, device)
            self.hyp_state: tuple[list[int], torch.Tensor] | dict = (hyps[0], dec)
        else:
            self.hyp_state = init_beam(model)

    @property
    def num_frames(self) -> int:
        """Fbank frames received so far."""
        return self.num_processed_frames + self.pending.shape[0]

    def accept_features(self, features: torch.Tensor) -> None:
        """Append fbank frames (T, F) to the stream."""
        if self.input_done:
            raise ValueError(f"stream {self.stream_id!r}: features after input_finished()")
        if features.dim() != 2 or features.shape[1] != self.pending.shape[1]:
            raise ValueError(
                f"stream {self.stream_id!r}: features must be (T, {self.pending.shape[1]}); "
                f"got {tuple(features.shape)}"
            )
        self.pending = torch.cat([self.pending, features.to(self.pending)])

    def input_finished(self) -> None:
        """No more frames: the last chunks are decoded with zero right padding."""
        if self.num_frames < MIN_ENCODER_FRAMES:
            raise ValueError(
                f"stream {self.stream_id!r}: {self.num_frames} fbank frames, below the encoder's "
                f"minimum of {MIN_ENCODER_FRAMES}"
            )
        self.input_done = True

    def total_chunks(self) -> int:
        """Chunks this utterance takes (known once the input has ended)."""
        t50 = (self.num_frames - 7) // 2  # 50 Hz frames after the front end
        return max(1, -(-t50 // (self.chunk_shift // 2)))

    @property
    def done(self) -> bool:
        return self.input_done and self.num_chunks >= self.total_chunks()

    @property
    def ready(self) -> bool:
        """The next chunk can be decoded: its frames (look-ahead included) are all here, or the
        input has ended and chunks are left."""
        if self.done:
            return False
        return self.input_done or self.pending.shape[0] >= self.chunk_input_frames

    def next_chunk(self) -> tuple[torch.Tensor, int]:
        """(chunk_input_frames, F) zero-padded next chunk and its valid frames."""
        x = self.pending[: self.chunk_input_frames]
        n = x.shape[0]
        return torch.nn.functional.pad(x, (0, 0, 0, self.chunk_input_frames - n)), n

    def consume_chunk(self) -> None:
        """Drop the ``chunk_shift`` frames of the chunk just decoded."""
        self.pending = self.pending[self.chunk_shift :]
        self.num_processed_frames += self.chunk_shift
        self.num_chunks += 1

    @property
    def hyp(self) -> list[int]:
        """The current best token ids (blanks removed)."""
        if self.method == "greedy_search":
            return self.hyp_state[0][self.context_size :]
        return beam_best(self.hyp_state, self.context_size)


@torch.no_grad()
def decode_one_chunk(
    model: nn.Module,
    streams: list[DecodeStream],
    beam_size: int = 4,
    max_sym_per_frame: int = 1,
    blank_penalty: float = 0.0,
) -> list[DecodeStream]:
    """Decode the next chunk of every ready stream in ``streams`` with one encoder call.

    Args:
      model: the causal ``AsrModel`` (eval mode) the streams were made for.
      streams: streams of one method; those not :attr:`~DecodeStream.ready` are left alone.
      beam_size: modified beam search's beam; max_sym_per_frame: greedy search's limit.
      blank_penalty: subtracted from the blank logit (as in the offline searches).
    Returns:
      the streams decoded (in the order of ``streams``).
    """
    batch = [s for s in streams if s.ready]
    if not batch:
        return []
    methods = {s.method for s in batch}
    assert len(methods) == 1, f"streams of one method per batch; got {sorted(methods)}"
    chunks = [s.next_chunk() for s in batch]
    x = torch.stack([c for c, _ in chunks])  # (B, chunk_input_frames, F)
    x_lens = torch.tensor([n for _, n in chunks], dtype=torch.int64, device=x.device)
    states = [torch.cat(parts) for parts in zip(*(s.states for s in batch))]
    out, out_lens, new_states = model.encoder.streaming_forward(x, x_lens, states)
    B = len(batch)
    assert out.shape[0] == B and out_lens.shape == (B,), f"out {out.shape}, lens {out_lens.shape}"
    for i, s in enumerate(batch):
        s.states = [st[i : i + 1] for st in new_states]
        s.consume_chunk()
    lens = out_lens.tolist()
    enc = model.joiner.encoder_proj(out)  # (B, chunk_size // 2, J)
    if batch[0].method == "greedy_search":
        order = sorted(range(B), key=lambda i: -lens[i])  # stable: longest first
        hyps = [batch[i].hyp_state[0] for i in order]
        dec = torch.cat([batch[i].hyp_state[1] for i in order])
        rows = torch.tensor(order, device=enc.device)
        dec = greedy_search_advance(
            model, enc[rows], [lens[i] for i in order], hyps, dec, max_sym_per_frame, blank_penalty
        )
        for k, i in enumerate(order):
            batch[i].hyp_state = (hyps[k], dec[k : k + 1])
    else:
        beams = [s.hyp_state for s in batch]
        modified_beam_search_advance(model, enc, lens, beams, beam_size, blank_penalty)
        for s, bm in zip(batch, beams):
            s.hyp_state = bm
    for s, n in zip(batch, lens):
        s.num_encoder_frames += n
    return batch


def decode_streams(
    model: nn.Module,
    utterances: Iterable[tuple[K, torch.Tensor]],
    method: str = "greedy_search",
    num_decode_streams: int = 100,
    beam_size: int = 4,
    max_sym_per_frame: int = 1,
    blank_penalty: float = 0.0,
) -> Iterator[tuple[K, list[int]]]:
    """Decode whole utterances as streams, ``num_decode_streams`` at a time.

    Args:
      model: a causal ``AsrModel`` in eval mode (after :func:`apply_chunk_flags` if wanted).
      utterances: (key, fbank (T, F) with T >= 9) pairs, read lazily as streams free up.
      method: one of :data:`STREAMING_METHODS`.
      beam_size, max_sym_per_frame, blank_penalty: as in :func:`decode_one_chunk`.
    Yields:
      (key, token ids) for each utterance, in the order they finish.
    """
    if num_decode_streams < 1:
        raise ValueError(f"--num-decode-streams must be >= 1; got {num_decode_streams}")
    source = iter(utterances)
    active: list[tuple[K, DecodeStream]] = []
    exhausted = False
    while active or not exhausted:
        while not exhausted and len(active) < num_decode_streams:
            item = next(source, None)
            if item is None:
                exhausted = True
                break
            key, feats = item
            stream = DecodeStream(model, method, stream_id=str(key))
            stream.accept_features(feats)
            stream.input_finished()
            active.append((key, stream))
        if not active:
            break
        decode_one_chunk(model, [s for _, s in active], beam_size, max_sym_per_frame, blank_penalty)
        for key, s in [a for a in active if a[1].done]:
            yield key, s.hyp
        active = [a for a in active if not a[1].done]
