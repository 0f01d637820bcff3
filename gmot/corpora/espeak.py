"""In-process espeak-ng synthesis through ctypes (library bundled by ``espeakng-loader``).

espeak-ng 1.52 keeps global state, so one :class:`EspeakSynth` per process is enough; the class
is a thin wrapper that sets voice / rate / pitch and returns int16 samples at ``sample_rate`` Hz
(22,050 Hz for espeak-ng voices).
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_ESPEAK_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_ESPEAK_RATE = 1
_ESPEAK_VOLUME = 2
_ESPEAK_PITCH = 3
_ESPEAK_RANGE = 4

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

_lock = threading.Lock()
_state: dict = {}


def _load() -> tuple[ctypes.CDLL, int]:
    if "lib" in _state:
        return _state["lib"], _state["sr"]
    try:
        import espeakng_loader
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "espeakng-loader is required for espeak-ng synthesis: pip install espeakng-loader"
        ) from e
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    sr = lib.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
    )
    if sr <= 0:
        raise RuntimeError(f"espeak_Initialize failed (returned {sr})")
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    chunks: list[np.ndarray] = []

    def _cb(wav, n, events):  # noqa: ARG001 - signature fixed by espeak
        if n > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    cb = _CALLBACK(_cb)
    lib.espeak_SetSynthCallback(cb)
    _state.update(lib=lib, sr=sr, cb=cb, chunks=chunks)
    return lib, sr


def list_variants() -> list[str]:
    """Names of the voice variants shipped with espeakng-loader (files under voices/!v)."""
    import pathlib

    import espeakng_loader

    d = pathlib.Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    return sorted(p.name for p in d.iterdir() if p.is_file())


class EspeakSynth:
    """Synthesise text with espeak-ng in process.

    Args:
        voice: espeak voice name, e.g. ``"cmn-latn-pinyin"`` (tone-numbered pinyin input).
    """

    def __init__(self, voice: str = "cmn-latn-pinyin") -> None:
        self.lib, self.sample_rate = _load()
        self.voice = voice

    def synth(
        self, text: str, *, variant: str | None = None, rate: int = 175, pitch: int = 50
    ) -> np.ndarray:
        """Return int16 samples (N,) at ``self.sample_rate`` Hz.

        Args:
            text: the input text (pinyin with tone digits for ``cmn-latn-pinyin``).
            variant: voice variant (a name from :func:`list_variants`) or None.
            rate: words per minute (espeak range 80..450).
            pitch: base pitch 0..100.
        """
        if not 80 <= rate <= 450:
            raise ValueError(f"rate must be in [80, 450] words/min, got {rate}")
        if not 0 <= pitch <= 100:
            raise ValueError(f"pitch must be in [0, 100], got {pitch}")
        name = self.voice if variant is None else f"{self.voice}+{variant}"
        with _lock:
            if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
                raise ValueError(f"espeak-ng does not know voice {name!r}")
            self.lib.espeak_SetParameter(_ESPEAK_RATE, int(rate), 0)
            self.lib.espeak_SetParameter(_ESPEAK_PITCH, int(pitch), 0)
            chunks = _state["chunks"]
            chunks.clear()
            data = text.encode("utf-8") + b"\0"
            buf = ctypes.create_string_buffer(data)
            err = self.lib.espeak_Synth(
                buf, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            if err != 0:
                raise RuntimeError(f"espeak_Synth failed with code {err} for text {text!r}")
            self.lib.espeak_Synchronize()
            out = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
            chunks.clear()
        return out.astype(np.int16, copy=False)
