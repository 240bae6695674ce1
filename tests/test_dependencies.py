"""What `pip install` of guardd brings, and what guardd says when the wake word models are not
there: pyproject.toml lists only what runs (the models' wheel is installed on its own, without
the scipy and scikit-learn its training helpers need), and in an environment without the models
every way of starting guardd names the one command that installs them, without a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from harness import ROOT, write_config

from guardd.listen.features import MODELS_WHEEL

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FIX = f"-m pip install --no-deps --force-reinstall {MODELS_WHEEL}"


def test_pip_install_brings_only_what_runs_and_the_models_come_pinned_on_their_own() -> None:
    deps = PYPROJECT["project"]["dependencies"]
    names = [d.split("=")[0].split("<")[0].split(">")[0].strip().lower() for d in deps]
    assert "openwakeword" not in names, "its requirements (scipy, scikit-learn) would come too"
    assert PYPROJECT["tool"]["guardd"]["models"] == MODELS_WHEEL, "the scripts and guardd name one wheel"
    onnxruntime = next(d for d in deps if d.startswith("onnxruntime"))
    assert onnxruntime.startswith("onnxruntime=="), "pinned: a newer release could bring telemetry back"
    import onnxruntime as ort

    assert ort.__version__ == onnxruntime.split("==")[1], "this environment runs the pinned onnxruntime"


@pytest.fixture(scope="module")
def without_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with guardd and every dependency of this one but the models' wheel: a .pth file
    lends it this environment's packages through a folder of links that leaves openwakeword out."""
    base = tmp_path_factory.mktemp("without-models")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], check=True, timeout=120)
    lender = base / "lender"
    lender.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith("openwakeword") and not entry.name.endswith(".pth"):
            (lender / entry.name).symlink_to(entry)
    site = next((base / "venv" / "lib").glob("python3*/site-packages"))
    (site / "lender.pth").write_text(f"{lender}\n{ROOT}\n")
    python = base / "venv" / "bin" / "python"
    probe = subprocess.run([python, "-c", "import numpy, onnxruntime, guardd, importlib.util as u; "
                            "assert u.find_spec('openwakeword') is None"], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    return python


def run(python: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), "-m", "guardd", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock", **(env or {})})


def test_without_the_models_every_start_names_the_one_command(tmp_path: Path, without_models: Path,
                                                              manifest: dict) -> None:
    config = write_config(tmp_path)
    wav = manifest["dir"] / manifest["demo"]["file"]
    for args in (["check-config", str(config)], ["replay", str(wav), "--config", str(config)],
                 ["run", "--simulate", "--config", str(config)]):
        result = run(without_models, *args)
        said = result.stdout + result.stderr
        assert result.returncode != 0, (args, said)
        assert "the wake word models are not installed" in said and f"{without_models} {FIX}" in said, (args, said)
        assert "Traceback" not in said, (args, said)

    doctor = run(without_models, "doctor", "--config", str(config))
    line = next(line for line in doctor.stdout.splitlines() if "wake models" in line)
    assert line.startswith("FAIL") and "not installed" in line, doctor.stdout
    fix = doctor.stdout.splitlines()[doctor.stdout.splitlines().index(line) + 1]
    assert fix.strip() == f"fix: {without_models} {FIX}", doctor.stdout


def test_a_model_of_your_own_still_needs_the_shipped_feature_models(tmp_path: Path, without_models: Path) -> None:
    own = tmp_path / "mine.onnx"
    own.write_bytes(b"not checked before the feature models are")
    config = write_config(tmp_path, wake={"models": [str(own)]})
    result = run(without_models, "check-config", str(config))
    assert result.returncode != 0 and f"{without_models} {FIX}" in result.stderr, result.stderr
