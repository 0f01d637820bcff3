"""Render a transport plan as a heatmap (acoustic frames x tokens, token text on the axis)."""

from __future__ import annotations

import functools
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

__all__ = ["plot_transport_plan", "find_cjk_font"]

_log = logging.getLogger(__name__)

# A code point every CJK-capable font must have ("中").
_CJK_PROBE = 0x4E2D


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Path of an installed font (known to matplotlib) that covers CJK ideographs, or ``None``."""
    from matplotlib import font_manager, ft2font

    preferred = (
        "Noto Sans CJK", "Noto Serif CJK", "Source Han", "WenQuanYi", "SimHei",
        "Microsoft YaHei", "PingFang", "Droid Sans Fallback", "AR PL", "Unifont",
    )  # fmt: skip
    entries = sorted(
        font_manager.fontManager.ttflist,
        key=lambda f: not any(p.lower() in f.name.lower() for p in preferred),
    )
    for entry in entries:
        try:
            if _CJK_PROBE in ft2font.FT2Font(entry.fname).get_charmap():
                return entry.fname
        except Exception:  # unreadable font file: skip it
            continue
    return None


def _printable(tokens: list[str], font_path: str | None) -> list[str]:
    """Token labels; without a CJK font, characters the default font lacks become ``U+XXXX``."""
    if font_path is not None:
        return tokens
    from matplotlib import font_manager, ft2font

    cmap = ft2font.FT2Font(font_manager.findfont("DejaVu Sans")).get_charmap()
    return ["".join(c if ord(c) in cmap else f"U+{ord(c):04X}" for c in t) for t in tokens]


def plot_transport_plan(
    plan: torch.Tensor | np.ndarray,
    tokens: list[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Save a heatmap of one utterance's plan to a PNG file.

    Args:
        plan: ``(La, Lt)`` transport plan (frames x tokens), e.g. ``plans[b, :h_len, :z_len]``.
        tokens: ``Lt`` token strings, shown on the token axis (CJK rendered with a CJK font when
            one is installed; otherwise shown as ``U+XXXX`` code points, without warnings).
        path: output file (``.png``); parent directories are created.
        title: optional figure title.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    arr = (
        plan.detach().float().cpu().numpy() if isinstance(plan, torch.Tensor) else np.asarray(plan)
    )
    if arr.ndim != 2:
        raise ValueError(f"plan must be 2-D (La, Lt), got shape {arr.shape}")
    La, Lt = arr.shape
    if len(tokens) != Lt:
        raise ValueError(f"tokens has {len(tokens)} entries but plan has Lt={Lt} columns")
    if La == 0 or Lt == 0:
        raise ValueError(f"plan is empty: shape {arr.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    font_path = find_cjk_font()
    if font_path is None and any(any(ord(c) > 0x2E7F for c in t) for t in tokens):
        _log.debug("no CJK font found; token labels shown as code points")
    fprop = font_manager.FontProperties(fname=font_path) if font_path else None
    labels = _printable(list(tokens), font_path)

    fig = Figure(figsize=(max(4.0, 0.35 * Lt + 2.0), max(3.0, min(12.0, 0.02 * La + 3.0))))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(arr, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis")
    fig.colorbar(im, ax=ax, label="transport mass")
    ax.set_xticks(range(Lt))
    ax.set_xticklabels(labels, fontproperties=fprop, rotation=0 if Lt < 30 else 90)
    ax.set_xlabel("tokens")
    ax.set_ylabel("acoustic frames")
    if title:
        ax.set_title(_printable([title], font_path)[0], fontproperties=fprop)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
    return path
