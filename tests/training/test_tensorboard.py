"""TensorBoard output of a real (tiny, synthetic) run: every loss term per frame, lr, grad scale,
GM-OT diagnostics, validation, and the transport-plan heatmap image."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_tensorboard_scalars_and_plan_image(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = dict(os.environ, OMP_NUM_THREADS="1")
    exp = tmp_path / "exp"
    r = subprocess.run(
        [sys.executable, str(HERE / "train_script.py"), str(exp), "--tensorboard", "1",
         "--num-epochs", "1", "--use-ctc", "1", "--use-attention-decoder", "1",
         "--attention-decoder-dim", "32", "--attention-decoder-ff-dim", "64",
         "--gmot-loss-scale", "0.5", "--log-interval", "1", "--valid-interval", "2",
         "--plot-plan-interval", "2"],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    ea = EventAccumulator(str(exp / "tensorboard"))
    ea.Reload()
    scalars = set(ea.Tags()["scalars"])
    for term in ("simple", "pruned", "ctc", "attention", "gmot", "loss"):
        assert f"train/current_{term}" in scalars and f"valid/{term}" in scalars, term
    for t in ("train/lr", "train/grad_scale", "train/tot_gmot_distance",
              "train/tot_gmot_plan_entropy", "train/gmot_scale"):  # fmt: skip
        assert t in scalars, t
    img = ea.Images("train/transport_plan")
    assert img and img[0].width > 50 and img[0].height > 50
    assert (exp / "plans" / "plan-2.png").is_file()
