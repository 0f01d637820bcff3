"""The hsk recipe's run.sh options: presets change defaults, explicit options win."""

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
    assert (v["preset"], v["num-epochs"], v["avg"], v["lr-epochs"]) == ("default", "4", "2", "2")
    assert v["exp-dir"] == "zipformer_gmot/exp"


def test_long_preset_sets_its_defaults() -> None:
    for args in (("--preset", "long"), ("--preset=long",)):
        rc, v = _options(*args)
        assert rc == 0
        assert (v["num-epochs"], v["avg"], v["lr-epochs"]) == ("12", "4", "3"), args
        assert v["exp-dir"] == "zipformer_gmot/exp_long"


def test_explicit_option_beats_preset_in_either_order() -> None:
    for args in (
        ("--num-epochs", "5", "--preset", "long"),
        ("--preset", "long", "--num-epochs", "5"),
    ):
        rc, v = _options(*args)
        assert rc == 0 and v["num-epochs"] == "5" and v["avg"] == "4", args


def test_unknown_preset_is_refused() -> None:
    r = subprocess.run(["bash", str(RUN), "--preset", "huge"], capture_output=True, text=True)
    assert r.returncode != 0
    assert "huge" in r.stderr and "long" in r.stderr
