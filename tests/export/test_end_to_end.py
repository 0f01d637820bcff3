"""Checkpoints -> export.py -> pretrained.py and onnxruntime agree (real AsrModel, tiny)."""

import numpy as np
import pytest
import soundfile as sf
import torch


def test_export_then_pretrained_and_onnx_agree(tmp_path, capsys):
    asr_model = pytest.importorskip("gmot.models.asr_model")
    ckpt_mod = pytest.importorskip("gmot.checkpoint")
    from gmot.data.tokens import TokenTable
    from gmot.decoding import pretrained_main
    from gmot.decoding.features import compute_fbank, read_wave
    from gmot.export import OnnxTransducer, export_main

    syms = ["<blk>", "<sos/eos>", "<unk>"] + list("你好世界我爱北京天气")
    lang = tmp_path / "lang"
    lang.mkdir()
    (lang / "tokens.txt").write_text("".join(f"{s} {i}\n" for i, s in enumerate(syms)))
    cfg = {
        "vocab_size": len(syms),
        "encoder": "tiny",
        "context_size": 2,
        "decoder_dim": 64,
        "joiner_dim": 64,
    }
    exp = tmp_path / "exp"
    for e in (1, 2):
        torch.manual_seed(e)
        m = asr_model.build_model(cfg)
        ckpt_mod.save_checkpoint(
            exp / f"epoch-{e}.pt",
            model=m,
            model_avg=m,
            params={"batch_idx_train": 10 * e},
            model_config=m.model_config,
        )
    written = export_main.main(
        [
            "--exp-dir",
            str(exp),
            "--lang-dir",
            str(lang),
            "--epoch",
            "2",
            "--avg",
            "1",
            "--use-averaged-model",
            "1",
        ]
    )
    # --use-averaged-model 1 from epoch 1 -> 2: the model of epoch 2 (model_avg == model here
    # with weights w1 at n=10 and w2 at n=20 -> (20 w2 - 10 w1) / 10 = 2 w2 - w1)
    e1 = torch.load(exp / "epoch-1.pt", weights_only=False)["model"]
    e2 = torch.load(exp / "epoch-2.pt", weights_only=False)["model"]
    pre = torch.load(written["pretrained"], weights_only=False)
    k = "joiner.output_linear.weight"
    assert torch.allclose(pre["model"][k], 2 * e2[k] - e1[k], atol=1e-6)

    rng = np.random.default_rng(0)
    wavs = []
    for i in range(2):
        wavs.append(tmp_path / f"w{i}.wav")
        sf.write(wavs[-1], (rng.standard_normal(12000 + 5000 * i) * 0.1).astype(np.float32), 16000)
    texts = pretrained_main.main(
        [
            "--checkpoint",
            str(written["pretrained"]),
            "--tokens",
            str(lang / "tokens.txt"),
            "--device",
            "cpu",
            *map(str, wavs),
        ]
    )
    assert any(texts)
    onnx = OnnxTransducer(written["encoder"], written["decoder"], written["joiner"])
    feats, lens = compute_fbank([read_wave(w) for w in wavs])
    table = TokenTable.load(lang / "tokens.txt")
    onnx_texts = [table.decode(h) for h in onnx.decode(feats.numpy(), lens.numpy())]
    assert onnx_texts == texts
