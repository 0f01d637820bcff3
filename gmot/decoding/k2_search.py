"""Transducer fast beam search (k2's FSA-based search with a trivial graph).

Split from :mod:`gmot.decoding.transducer_search` (the model interface and shapes are described
there) because it needs k2; :mod:`gmot.decoding` exports :func:`fast_beam_search`.
"""

from __future__ import annotations

import torch
from torch import nn

from gmot.decoding.transducer_search import _check_inputs, _decoder_proj, _joint


def require_k2():
    try:
        import k2  # noqa: F401
    except Exception as exc:  # ModuleNotFoundError or a broken build
        raise RuntimeError(
            "fast_beam_search needs k2 (https://k2-fsa.github.io/k2/), which is not importable "
            f"here ({type(exc).__name__}: {exc}). Install a k2 build matching your torch, or use "
            "--decoding-method modified_beam_search (no k2 needed)."
        ) from exc
    return k2


@torch.no_grad()
def fast_beam_search(
    model: nn.Module,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    beam: float = 20.0,
    max_states: int = 64,
    max_contexts: int = 8,
    temperature: float = 1.0,
) -> list[list[int]]:
    """FSA-based transducer beam search with a trivial decoding graph (needs k2).

    Uses k2's ``RnntDecodingStreams`` (one stream per utterance, all frames batched), then the
    best path of the resulting lattice. Raises ``RuntimeError`` with an explanation when k2 is
    not importable. Shapes as in :func:`greedy_search_batch`; ``beam`` is a log-prob beam.
    """
    _check_inputs(encoder_out, encoder_out_lens)
    k2 = require_k2()
    vocab_size = int(model.decoder.vocab_size)
    context_size = model.decoder.context_size
    device = encoder_out.device
    B, T, _ = encoder_out.shape
    graph = k2.trivial_graph(vocab_size - 1, device=device)
    config = k2.RnntDecodingConfig(
        vocab_size=vocab_size,
        decoder_history_len=context_size,
        beam=beam,
        max_contexts=max_contexts,
        max_states=max_states,
    )
    streams = k2.RnntDecodingStreams([k2.RnntDecodingStream(graph) for _ in range(B)], config)
    enc = model.joiner.encoder_proj(encoder_out)  # (B, T, J)
    for t in range(T):
        shape, contexts = streams.get_contexts()
        dec = _decoder_proj(model, contexts.to(torch.int64))  # (num_contexts, J)
        rows = shape.row_ids(1).to(torch.int64)
        logits = _joint(model, enc[rows, t], dec)
        streams.advance((logits / temperature).log_softmax(dim=-1))
    streams.terminate_and_flush_to_streams()
    lattice = streams.format_output(encoder_out_lens.tolist())
    best = k2.shortest_path(lattice, use_double_scores=True)
    labels = k2.RaggedTensor(best.arcs.shape(), best.labels).remove_axis(1)
    labels = labels.remove_values_leq(0)
    return [list(map(int, x)) for x in labels.tolist()]
