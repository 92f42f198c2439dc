"""The wheel works outside the checkout: it carries the weights, the detector, the sample and
the split, and its console scripts run from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from model.pts import read_pts

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_in_a_fresh_venv_and_predicts_the_sample_from_elsewhere(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("drr_studio-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    # the dependencies (torch, OpenCV, Qt) come from this environment's site-packages through a
    # .pth line; its .pth files (the editable install of the checkout) are not run from there
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)],
                   check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(py), "-c", "import model, model.resources as r; print(model.__file__); "
                            "print(r.resource('astronaut.png'))\n"
                            "from model.correction import for_checkpoint\n"
                            "stats, why = for_checkpoint(r.resource(r.DEFAULT_WEIGHTS), 68); print(why is None and stats.active)"],
                           check=True, capture_output=True, text=True, cwd=elsewhere, env=env).stdout.split()
    assert where[2] == "True", "the wheel must carry the default model's assisted-correction statistics"
    assert all(Path(p).is_relative_to(env_dir) for p in where[:2]), where  # the wheel's copy, not the checkout
    out = elsewhere / "labels"
    run = subprocess.run([str(env_dir / "bin" / "drr-predict"), where[1], "--out", str(out)],
                         capture_output=True, text=True, cwd=elsewhere, env=env)
    assert run.returncode == 0, run.stderr
    pts = read_pts(out / "astronaut.pts", expected_points=68)
    # the sample's face lies around (225, 120) in its 512 x 512 picture
    assert 170 < pts[:, 0].mean() < 280 and 60 < pts[:, 1].mean() < 190
    for tool in ("drr-studio", "drr-eval", "drr-train"):
        assert (env_dir / "bin" / tool).exists()
