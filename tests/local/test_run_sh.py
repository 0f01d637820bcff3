"""The hsk recipe's run.sh options: presets change defaults, explicit options win."""

import json
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "egs" / "hsk" / "ASR" / "run.sh"


def _options(*args: str) -> tuple[int, dict[str, str]]:
    """run.sh's --help listing as {option: current value} (parse_options prints it)."""
    r = subprocess.run(["bash", str(RUN), *args, "--help"], capture_output=True, text=True)
    values = dict(re.findall(r"^\s+--([a-z0-9-]+) \[(.*)\]$", r.stderr, flags=re.M))
    return r.returncode, values


def test_default_preset() -> None:
    rc, v = _options()
    assert rc == 0
    assert (v["preset"], v["num-epochs"], v["avg"], v["lr-epochs"]) == ("default", "4", "1", "2")
    assert v["ctc-weight"] == "1.5"
    assert v["ctc-joint"] == "prefix"
    assert v["exp-dir"] == "zipformer_gmot/exp"


def test_long_preset_sets_its_defaults() -> None:
    for args in (("--preset", "long"), ("--preset=long",)):
        rc, v = _options(*args)
        assert rc == 0
        assert (v["num-epochs"], v["avg"], v["lr-epochs"]) == ("12", "4", "3"), args
        assert v["exp-dir"] == "zipformer_gmot/exp_long"


def test_explicit_option_beats_preset_in_either_order() -> None:
    for args in (
        ("--num-epochs", "7", "--preset", "long"),
        ("--preset", "long", "--num-epochs", "7"),
    ):
        rc, v = _options(*args)
        assert rc == 0 and v["num-epochs"] == "7" and v["avg"] == "4", args


def test_unknown_preset_is_refused() -> None:
    r = subprocess.run(["bash", str(RUN), "--preset", "huge"], capture_output=True, text=True)
    assert r.returncode != 0
    assert "huge" in r.stderr and "long" in r.stderr


def _recorded_calls(tmp_path: Path, stage: int, *args: str) -> list[list[str]]:
    """The argument lists of every python call run.sh's ``stage`` makes (a stand-in python
    records them, one JSON list per call; nothing runs)."""
    log = tmp_path / "calls.jsonl"
    log.unlink(missing_ok=True)
    fake = tmp_path / "python"
    fake.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        "if sys.argv[1] == '-c':\n    print(384)\n    sys.exit(0)\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "PYTHON": str(fake), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        ["bash", str(RUN), "--stage", str(stage), "--stop-stage", str(stage), *args],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


def _train_args(tmp_path: Path, *args: str) -> list[str]:
    """The arguments stage 1 gives train.py."""
    (call,) = _recorded_calls(tmp_path, 1, *args)
    return call


def test_input_norm_and_freq_pool_reach_the_encoder_config(tmp_path: Path) -> None:
    def encoder(*args: str) -> dict | str:
        argv = _train_args(tmp_path, *args)
        value = argv[argv.index("--encoder-config") + 1]
        return json.loads(value) if value.startswith("{") else value

    default = {"base": "tiny", "input_norm": "utterance", "freq_pool": 1}
    assert encoder() == default
    assert encoder("--input-norm", "none") == {**default, "input_norm": "none"}
    assert encoder("--freq-pool", "2") == {**default, "freq_pool": 2}
    spec = {"base": "tiny", "dropout": 0.0}
    assert encoder("--encoder-config", json.dumps(spec)) == spec  # JSON passes unchanged


def test_decoding_runs_the_transducer_searches_alone_and_jointly(tmp_path: Path) -> None:
    def runs(*args: str) -> list[tuple[str, str]]:
        calls = _recorded_calls(tmp_path, 2, *args)
        assert all(c[c.index("--avg") + 1] == "1" for c in calls)
        return [
            (c[c.index("--decoding-method") + 1], c[c.index("--ctc-weight") + 1]) for c in calls
        ]

    assert runs() == [
        ("greedy_search", "0"),
        ("greedy_search", "1.5"),
        ("modified_beam_search", "0"),
        ("modified_beam_search", "1.5"),
        ("ctc_greedy_search", "0"),
        ("modified_beam_search_ctc_rescoring", "1.5"),
        ("modified_beam_search_ctc_rescoring", "1.5"),  # again with the LM
    ]
    # every decode call says how the CTC head joins (decode.py ignores it at weight 0)
    joints = [c[c.index("--ctc-joint") + 1] for c in _recorded_calls(tmp_path, 2)]
    assert set(joints) == {"prefix"}
    frame = _recorded_calls(tmp_path, 2, "--ctc-joint", "frame")
    assert {c[c.index("--ctc-joint") + 1] for c in frame} == {"frame"}
    assert runs("--ctc-weight", "0", "--lm-scale", "0") == [
        ("greedy_search", "0"),
        ("modified_beam_search", "0"),
        ("ctc_greedy_search", "0"),
        ("modified_beam_search_ctc_rescoring", "0"),
    ]


def test_lm_scale_adds_an_lm_rescored_run(tmp_path: Path) -> None:
    def lm_runs(*args: str) -> list[tuple[str, str | None, str | None]]:
        out = []
        for c in _recorded_calls(tmp_path, 2, *args):
            lm = [c[c.index(f) + 1] if f in c else None for f in ("--lm-path", "--lm-scale")]
            out.append((c[c.index("--decoding-method") + 1], *lm))
            if lm[0]:  # the LM run reranks a longer n-best
                assert c[c.index("--beam-size") + 1] == "8", c
        return out

    rescoring = "modified_beam_search_ctc_rescoring"
    assert [r for r in lm_runs() if r[1]] == [(rescoring, "data/lm/char_2gram.arpa", "1.5")]
    with_lm = lm_runs("--lm-scale", "0.7", "--lm-order", "3")
    assert [r for r in with_lm if r[1]] == [(rescoring, "data/lm/char_3gram.arpa", "0.7")]
    assert (rescoring, None, None) in with_lm  # and once without the LM
    assert len(with_lm) == len(lm_runs("--lm-scale", "0")) + 1
    assert all(r[1] is None for r in lm_runs("--lm-scale", "0"))
