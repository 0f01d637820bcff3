import argparse
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tiny_transducer import TinyAsr

import gmot.decoding.decode_main as decode_main
import gmot.decoding.pretrained_main as pretrained_main
from gmot.data.tokens import TokenTable
from gmot.decoding import compute_cer, greedy_search_batch, modified_beam_search
from gmot.decoding.features import compute_fbank, read_wave

TOKENS = "<blk> 0\n<sos/eos> 1\n<unk> 2\n你 3\n好 4\n世 5\n界 6\n"


@pytest.fixture
def corpus(tmp_path):
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    rng = np.random.default_rng(0)
    recs, sups = [], []
    for i, (dur, text) in enumerate([(0.6, "你好"), (0.9, "世 界"), (0.4, "你")]):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, (rng.standard_normal(int(16000 * dur)) * 0.1).astype(np.float32), 16000)
        rec = Recording.from_file(path, recording_id=f"u{i}")
        recs.append(rec)
        sups.append(SupervisionSegment(f"u{i}", f"u{i}", 0.0, rec.duration, text=text))
    cuts = CutSet.from_manifests(
        RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups)
    )
    manifest = tmp_path / "tiny_cuts_test.jsonl.gz"
    cuts.to_file(manifest)
    lang = tmp_path / "lang"
    lang.mkdir()
    (lang / "tokens.txt").write_text(TOKENS, encoding="utf-8")
    return tmp_path, manifest, lang


@pytest.mark.parametrize(
    "method",
    [
        "greedy_search",
        "modified_beam_search",
        "ctc_greedy_search",
        "ctc_prefix_beam_search_attention_rescoring",
        "modified_beam_search_attention_rescoring",
    ],
)
def test_decode_main_end_to_end(corpus, monkeypatch, method):
    tmp_path, manifest, lang = corpus
    model = TinyAsr().eval()
    monkeypatch.setattr(decode_main, "load_model", lambda p, d: (model, {}, "epoch-3-avg-1"))
    exp = tmp_path / "exp"
    cers = decode_main.main(
        [
            "--exp-dir",
            str(exp),
            "--lang-dir",
            str(lang),
            "--test-cuts",
            str(manifest),
            "--decoding-method",
            method,
            "--device",
            "cpu",
            "--max-duration",
            "1.0",
            "--num-workers",
            "0",
        ]
    )
    out = exp / method
    summary = next(out.glob("wer-summary-test-epoch-3-avg-1.txt")).read_text().splitlines()
    assert summary[0] == "settings\tCER"
    recogs = next(out.glob("recogs-test-*-epoch-3-avg-1.txt")).read_text().splitlines()
    refs = [line.split("ref=", 1)[1] for line in recogs if "\tref=" in line]
    hyps = [line.split("hyp=", 1)[1] for line in recogs if "\thyp=" in line]
    assert refs == ["你好", "世界", "你"]  # the data module drops the spaces of the texts
    expected_cer = compute_cer(refs, hyps).error_rate
    assert cers["test"] == pytest.approx(expected_cer)
    assert float(summary[1].split("\t")[1]) == pytest.approx(expected_cer, abs=0.006)
    errs = next(out.glob("errs-test-*-epoch-3-avg-1.txt")).read_text()
    assert re.match(r"%CER = \d+\.\d\d\n", errs)

    if method == "greedy_search":  # the data module's fbank: hyps as decoding the audio directly
        table = TokenTable.load(lang / "tokens.txt")
        feats, lens = compute_fbank([read_wave(tmp_path / f"u{i}.wav") for i in range(3)])
        with torch.no_grad():
            enc, enc_lens = model.forward_encoder(feats, lens)
        direct = [table.decode(h) for h in greedy_search_batch(model, enc, enc_lens)]
        assert hyps == direct
        assert any(hyps)


def test_decode_main_computes_the_features_the_checkpoint_was_trained_on(corpus, monkeypatch):
    """A model trained with --pitch 1 reads 83 features: decoding computes fbank + pitch on the
    fly without being told (a model of 83 inputs fed 80 would fail), and its hypotheses equal
    decoding fbank + pitch computed directly."""
    tmp_path, manifest, lang = corpus
    model = TinyAsr(num_features=83).eval()
    monkeypatch.setattr(decode_main, "load_model", lambda p, d: (model, {}, "epoch-1-avg-1"))
    exp = tmp_path / "exp"
    argv = ["--exp-dir", str(exp), "--lang-dir", str(lang), "--test-cuts", str(manifest)]
    argv += ["--decoding-method", "greedy_search", "--device", "cpu", "--num-workers", "0"]
    decode_main.main(argv)
    recogs = next((exp / "greedy_search").glob("recogs-test-*")).read_text().splitlines()
    hyps = [line.split("hyp=", 1)[1] for line in recogs if "\thyp=" in line]
    table = TokenTable.load(lang / "tokens.txt")
    waves = [read_wave(tmp_path / f"u{i}.wav") for i in range(3)]
    feats, lens = compute_fbank(waves, num_features=83)
    assert feats.shape[-1] == 83
    with torch.no_grad():
        enc, enc_lens = model.forward_encoder(feats, lens)
    assert hyps == [table.decode(h) for h in greedy_search_batch(model, enc, enc_lens)]

    monkeypatch.setattr(pretrained_main, "load_model", lambda p, d: (model, {}, "x"))
    argv = ["--checkpoint", "unused.pt", "--tokens", str(lang / "tokens.txt"), "--device", "cpu"]
    assert len(pretrained_main.main(argv + [str(tmp_path / "u0.wav")])) == 1


def test_decode_batch_rescoring_prefers_scorer():
    model = TinyAsr().eval()
    feats, lens = torch.randn(1, 91, 80), torch.tensor([91])
    params = argparse.Namespace(
        decoding_method="modified_beam_search_attention_rescoring",
        beam_size=8,
        attention_scale=100.0,
    )
    with torch.no_grad():
        enc, enc_lens = model.forward_encoder(feats, lens)
    nbest = modified_beam_search(model, enc, enc_lens, 8, return_nbest=True)[0]
    # the stand-in attention decoder wants the length of the hypothesis most different in
    # length from the first-pass best; with scale 100 it dominates the first-pass score
    target = max((len(h) for h, _ in nbest), key=lambda n: abs(n - len(nbest[0][0])))
    model.attention_decoder.target_len = target
    hyp = decode_main.decode_batch(model, feats, lens, params)[0]
    expected = max(nbest, key=lambda h: (-abs(len(h[0]) - target), h[1]))[0]
    assert hyp == expected
    assert hyp != nbest[0][0]


def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit):
        decode_main.get_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in [
        "--epoch",
        "--avg",
        "--use-averaged-model",
        "--iter",
        "--exp-dir",
        "--decoding-method",
        "--beam-size",
        "--max-sym-per-frame",
        "--lang-dir",
    ]:
        assert flag in text


def test_cut_set_name():
    assert decode_main.cut_set_name("data/manifests/hsk_cuts_test.jsonl.gz") == "test"
    assert decode_main.cut_set_name("x/aishell_cuts_dev.jsonl") == "dev"


def test_pretrained_main(corpus, monkeypatch, capsys):
    tmp_path, _, lang = corpus
    model = TinyAsr().eval()
    monkeypatch.setattr(pretrained_main, "load_model", lambda p, d: (model, {}, "x"))
    # an 8 kHz copy of u0 is resampled to 16 kHz: same number of fbank frames
    samples, _ = sf.read(tmp_path / "u0.wav", dtype="float32")
    sf.write(tmp_path / "u0_8k.wav", samples[::2], 8000)
    assert read_wave(tmp_path / "u0_8k.wav").shape[0] == pytest.approx(samples.shape[0], abs=2)
    texts = pretrained_main.main(
        [
            "--checkpoint",
            "unused.pt",
            "--tokens",
            str(lang / "tokens.txt"),
            "--device",
            "cpu",
            str(tmp_path / "u0.wav"),
            str(tmp_path / "u1.wav"),
        ]
    )
    assert len(texts) == 2
    assert set("".join(texts)) <= set("你好世界")
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'u0.wav'}: ")

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match="bad.wav"):
        read_wave(bad)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        read_wave(tmp_path / "missing.wav")


def test_test_cuts_default_to_the_corpus_dev_and_test_sets(tmp_path):
    """The library has no corpus: without --test-cuts, decode.py decodes the dev and test cuts
    of the corpus its recipe names (--corpus, --manifest-dir)."""
    recipe = decode_main.get_parser(corpus="toy", manifest_dir=tmp_path)
    assert decode_main.cut_paths_to_decode(recipe.parse_args([])) == [
        tmp_path / "toy_cuts_dev.jsonl.gz",
        tmp_path / "toy_cuts_test.jsonl.gz",
    ]
    given = recipe.parse_args(["--test-cuts", "a_cuts_x.jsonl.gz"])
    assert decode_main.cut_paths_to_decode(given) == [Path("a_cuts_x.jsonl.gz")]
    with pytest.raises(ValueError, match="--test-cuts.*--corpus"):
        decode_main.cut_paths_to_decode(decode_main.get_parser().parse_args([]))


def test_decode_main_joint_ctc_greedy_search(corpus, monkeypatch):
    """--ctc-weight: the result files name it and the hyps are greedy search with the CTC head's
    weighted log-probabilities added (as computed directly on the audio)."""
    tmp_path, manifest, lang = corpus
    model = TinyAsr().eval()
    monkeypatch.setattr(decode_main, "load_model", lambda p, d: (model, {}, "epoch-3-avg-1"))
    exp = tmp_path / "exp"
    args = ["--exp-dir", str(exp), "--lang-dir", str(lang), "--test-cuts", str(manifest)]
    args += ["--device", "cpu", "--max-duration", "1.0", "--num-workers", "0"]
    args += ["--ctc-joint", "frame", "--ctc-weight"]
    decode_main.main([*args, "0"])
    decode_main.main([*args, "1.5"])
    # both settings' rows stay in the shared summary (a second decode once deleted the first's)
    rows = (exp / "greedy_search" / "wer-summary-test-epoch-3-avg-1.txt").read_text()
    names = sorted(line.split("\t")[0] for line in rows.splitlines()[1:])
    assert names == [
        "greedy_search_max_sym_per_frame_1",
        "greedy_search_max_sym_per_frame_1_ctc_weight_1.5",
    ]
    recogs = exp / "greedy_search"
    path = recogs / "recogs-test-greedy_search_max_sym_per_frame_1_ctc_weight_1.5-epoch-3-avg-1.txt"
    hyps = [line.split("hyp=", 1)[1] for line in path.read_text().splitlines() if "hyp=" in line]
    table = TokenTable.load(lang / "tokens.txt")
    feats, lens = compute_fbank([read_wave(tmp_path / f"u{i}.wav") for i in range(3)])
    with torch.no_grad():
        enc, enc_lens = model.forward_encoder(feats, lens)
        scores = 1.5 * model.ctc_output(enc)
    direct = [table.decode(h) for h in greedy_search_batch(model, enc, enc_lens, 1, 0.0, scores)]
    assert hyps == direct
    # a model without a CTC head is refused before any test set is decoded
    model.ctc_output = None
    with pytest.raises(ValueError, match="needs a model with a CTC head"):
        decode_main.main([*args, "1.5"])
