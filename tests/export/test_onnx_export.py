import numpy as np
import pytest
import torch
from torch import nn

from gmot.decoding import greedy_search_batch
from gmot.export import OnnxTransducer, export_transducer_onnx
from gmot.transducer import Decoder, Joiner

pytest.importorskip("onnxruntime")


class TinyAsr(nn.Module):
    """Linear "encoder" with 2x subsampling + transducer head; AsrModel's decoding interface."""

    def __init__(self, vocab_size=9, dim=16, num_features=80):
        super().__init__()
        self.model_config = {"num_features": num_features}  # as AsrModel's checkpoint form
        self.enc = nn.Linear(num_features, dim)
        self.decoder = Decoder(vocab_size, 12, 0, 2)
        self.joiner = Joiner(dim, 12, 20, vocab_size)

    def forward_encoder(self, x, x_lens):
        out = torch.tanh(self.enc(x))[:, ::2]
        return out, (x_lens + 1) // 2


def _model():
    torch.manual_seed(0)
    model = TinyAsr().eval()
    with torch.no_grad():
        model.joiner.output_linear.weight.mul_(5)
    return model


def test_onnx_reports_the_feature_width_it_was_exported_with(tmp_path):
    """An encoder exported for fbank + pitch (83 inputs): the ONNX transcriber computes 83."""
    from gmot.decoding.features import model_num_features

    torch.manual_seed(0)
    model = TinyAsr(num_features=83).eval()
    paths = export_transducer_onnx(model, tmp_path, suffix="p")
    ort_model = OnnxTransducer(paths["encoder"], paths["decoder"], paths["joiner"])
    assert ort_model.num_features == 83 and model_num_features(ort_model) == 83


def test_onnx_matches_pytorch(tmp_path):
    model = _model()
    paths = export_transducer_onnx(model, tmp_path, suffix="epoch-1-avg-1")
    assert paths["encoder"].name == "encoder-epoch-1-avg-1.onnx"
    ort_model = OnnxTransducer(paths["encoder"], paths["decoder"], paths["joiner"])
    assert (ort_model.context_size, ort_model.blank_id, ort_model.vocab_size) == (2, 0, 9)
    assert ort_model.num_features == 80  # read from the encoder graph's input (N, T, F)

    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 57, 80, generator=g)  # other N and T than the tracing example
    x_lens = torch.tensor([57, 40, 23])
    with torch.no_grad():
        enc, enc_lens = model.forward_encoder(x, x_lens)
        expected = greedy_search_batch(model, enc, enc_lens, max_sym_per_frame=2)
        enc_proj = model.joiner.encoder_proj(enc)
    assert sum(len(h) for h in expected) > 5

    ort_enc, ort_lens = ort_model.run_encoder(x.numpy(), x_lens.numpy())
    np.testing.assert_array_equal(ort_lens, enc_lens.numpy())
    np.testing.assert_allclose(ort_enc, enc_proj.numpy(), atol=1e-5, rtol=1e-4)

    ctx = torch.tensor([[0, 3], [5, 7], [0, 0]])
    with torch.no_grad():
        dec = model.joiner.decoder_proj(model.decoder(ctx, need_pad=False)[:, -1])
        logits = model.joiner(enc_proj[0, :3], dec, project_input=False)
    ort_dec = ort_model.run_decoder(ctx.numpy())
    np.testing.assert_allclose(ort_dec, dec.numpy(), atol=1e-5, rtol=1e-4)
    ort_logits = ort_model.run_joiner(ort_enc[0, :3], ort_dec)
    np.testing.assert_allclose(ort_logits, logits.numpy(), atol=1e-4, rtol=1e-4)

    assert ort_model.decode(x.numpy(), x_lens.numpy(), max_sym_per_frame=2) == expected


def test_export_main_writes_pretrained_and_onnx(tmp_path, monkeypatch):
    import gmot.export.export_main as export_main

    model = _model()
    config = {"vocab_size": 9, "name": "tiny"}
    monkeypatch.setattr(export_main, "load_model", lambda params, device: (model, config, "e-2"))
    lang = tmp_path / "lang"
    lang.mkdir()
    (lang / "tokens.txt").write_text("<blk> 0\n<sos/eos> 1\n<unk> 2\n你 3\n")
    written = export_main.main(
        ["--exp-dir", str(tmp_path / "exp"), "--lang-dir", str(lang), "--epoch", "2", "--avg", "1"]
    )
    ckpt = torch.load(written["pretrained"], map_location="cpu")
    assert ckpt["model_config"] == config
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt["model"][k], v)
    assert written["joiner"] == tmp_path / "exp" / "joiner-e-2.onnx"
    assert (tmp_path / "exp" / "tokens.txt").read_text().endswith("你 3\n")


@pytest.mark.parametrize(
    "encoder", ["tiny", {"base": "tiny", "input_norm": "utterance", "freq_pool": 2}]
)
def test_onnx_zipformer_asr_model(tmp_path, encoder):
    """The real AsrModel (tiny Zipformer; also the hsk demo's encoder options) exports and
    decodes identically for new N and T."""
    asr_model = pytest.importorskip("gmot.models.asr_model")
    torch.manual_seed(0)
    model = asr_model.build_model(
        {
            "vocab_size": 30,
            "encoder": encoder,
            "context_size": 2,
            "decoder_dim": 64,
            "joiner_dim": 64,
        }
    ).eval()
    paths = export_transducer_onnx(model, tmp_path)
    ort_model = OnnxTransducer(paths["encoder"], paths["decoder"], paths["joiner"])
    for n, t in [(1, 57), (3, 161)]:
        x = torch.randn(n, t, 80)
        x_lens = torch.tensor([t - 9 * i for i in range(n)])
        with torch.no_grad():
            enc, enc_lens = model.forward_encoder(x, x_lens)
            expected = greedy_search_batch(model, enc, enc_lens)
            enc_proj = model.joiner.encoder_proj(enc)
        ort_enc, ort_lens = ort_model.run_encoder(x.numpy(), x_lens.numpy())
        np.testing.assert_array_equal(ort_lens, enc_lens.numpy())
        np.testing.assert_allclose(ort_enc, enc_proj.numpy(), atol=1e-4, rtol=1e-4)
        assert ort_model.greedy_search(ort_enc, ort_lens) == expected
        assert sum(map(len, expected)) > 0
