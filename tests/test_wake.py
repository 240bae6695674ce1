"""The wake detector: guardd's lean pipeline over openWakeWord's shipped ONNX files scores every
frame as stock openwakeword.Model does (within 1e-3), loads nothing from the network, and applies
threshold, trigger count and refractory time as documented."""

from __future__ import annotations

import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from guardd.errors import ModelError
from guardd.audioformat import FRAME_SAMPLES
from guardd.listen.features import resolve_model, shipped_models_dir
from guardd.listen.wake import WakeDetector

MODELS = ["alexa", "hey_jarvis"]


def samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def frames(x: np.ndarray) -> list[np.ndarray]:
    return [x[i : i + FRAME_SAMPLES] for i in range(0, len(x) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]


def guardd_scores(x: np.ndarray, models: list[str]) -> np.ndarray:
    detector = WakeDetector(models, threshold=0.5)
    out = []
    for i, f in enumerate(frames(x)):
        detector.process(f, (i + 1) * 0.08)
        out.append([detector.last_scores[m] for m in models])
    return np.array(out)


STOCK_SHARES = 4  # the fixtures in four parts, so parallel test workers share the slowest check


@pytest.mark.parametrize("share", range(STOCK_SHARES))
def test_scores_match_stock_openwakeword_within_1e_3_on_every_fixture(manifest, share):
    import openwakeword

    paths = [openwakeword.models[m]["model_path"] for m in MODELS]
    entries = manifest["positives"] + manifest["negatives"]
    # This share's fixtures one after another, each padded to whole frames: one stream, so one
    # stock model (0.4 s to load) scores them all, as a microphone would hear them in a row.
    each = [samples(manifest["dir"] / e["file"]) for e in entries[share::STOCK_SHARES]]
    x = np.concatenate([np.pad(s, (0, -len(s) % FRAME_SAMPLES)) for s in each])
    stock = openwakeword.Model(wakeword_model_paths=paths)
    expected = np.array(
        [[s for _, s in sorted(stock.predict(f).items())] for f in frames(x)]
    )  # sorted keys: alexa_v0.1, hey_jarvis_v0.1, the order of MODELS
    got = guardd_scores(x, MODELS)
    assert len(got) == len(x) // FRAME_SAMPLES
    assert float(np.abs(expected - got).max()) < 1e-3


def test_builtin_models_are_the_files_shipped_in_the_openwakeword_wheel():
    for name in ("alexa", "hey_jarvis", "hey_mycroft"):
        label, path = resolve_model(name)
        assert label == name
        assert path.parent == shipped_models_dir() and path.is_file()


def test_a_custom_onnx_path_loads_under_its_file_name(tmp_path):
    custom = tmp_path / "kitchen_word.onnx"
    shutil.copy(resolve_model("alexa")[1], custom)
    detector = WakeDetector([str(custom)], threshold=0.5)
    assert [c.label for c in detector.classifiers] == ["kitchen_word"]


@pytest.mark.parametrize(
    "model, message",
    [
        ("ok_google", "not a built-in name (alexa, hey_jarvis, hey_mycroft) and not a path to an .onnx file"),
        ("/nonexistent/word.onnx", "no such file"),
    ],
)
def test_an_unknown_model_is_refused_by_name(model, message):
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_model(model)


def test_the_detector_never_imports_openwakeword_or_its_training_stack():
    code = (
        "import sys; from guardd.listen.wake import WakeDetector; WakeDetector(['alexa'], 0.5); "
        "bad = [m for m in ('openwakeword', 'scipy', 'sklearn') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def loudest_positive(manifest: dict) -> np.ndarray:
    """The alexa positive with the highest peak score, so several frames clear the threshold."""
    alexa = [e for e in manifest["positives"] if e["model"] == "alexa"]
    peaks = [guardd_scores(samples(manifest["dir"] / e["file"]), ["alexa"]).max() for e in alexa[:6]]
    return samples(manifest["dir"] / alexa[int(np.argmax(peaks))]["file"])


def wakes(x: np.ndarray, **kwargs) -> list:
    detector = WakeDetector(["alexa"], **kwargs)
    found = []
    for i, f in enumerate(frames(x)):
        wake = detector.process(f, round((i + 1) * 0.08, 2))
        if wake:
            found.append(wake)
    return found


def test_refractory_time_allows_one_wake_per_spoken_wake_word(manifest):
    x = loudest_positive(manifest)
    without = wakes(x, threshold=0.5, refractory_s=0.0)
    with_refractory = wakes(x, threshold=0.5, refractory_s=2.0)
    assert len(without) >= 2, "the wake word should score above threshold on several frames"
    assert [w.t for w in with_refractory] == [without[0].t]


def test_trigger_frames_waits_for_consecutive_frames_above_threshold(manifest):
    x = loudest_positive(manifest)
    one = wakes(x, threshold=0.5, trigger_frames=1)
    two = wakes(x, threshold=0.5, trigger_frames=2)
    three = wakes(x, threshold=0.5, trigger_frames=3)
    # One frame waits for the next before it fires (the word may not have ended); a run of two
    # fires on its second frame, at the same moment; a run of three a frame later.
    assert round(two[0].t - one[0].t, 2) == 0.0 and round(three[0].t - two[0].t, 2) == 0.08
    assert wakes(x, threshold=0.5, trigger_frames=25) == []


def quiet_gaps_between_positives(manifest: dict, seconds: float = 3.0) -> tuple[np.ndarray, list]:
    """Every positive, each after `seconds` of the fixtures' -60 dBFS noise floor: long enough for
    the silence gate to close, so each wake word is heard right after the models rested."""
    rng = np.random.default_rng(6)
    parts, spans, at = [], [], 0
    for entry in manifest["positives"]:
        gap = (rng.standard_normal(int(seconds * 16000)) * 32768 * 10 ** (-60 / 20)).astype(np.int16)
        x = samples(manifest["dir"] / entry["file"])
        parts += [gap, x]
        spans.append((entry["model"], (at + len(gap)) / 16000, (at + len(gap) + len(x)) / 16000))
        at += len(gap) + len(x)
    return np.concatenate(parts), spans


def scored(x: np.ndarray, gate: bool) -> tuple[np.ndarray, np.ndarray, list]:
    detector = WakeDetector(MODELS, threshold=0.5, trigger_frames=1, gate_silence=gate)
    scores, skipped, found = [], [], []
    for i, f in enumerate(frames(x)):
        before = detector.skipped_frames
        wake = detector.process(f, round((i + 1) * 0.08, 2))
        scores.append([detector.last_scores[m] for m in MODELS])
        skipped.append(detector.skipped_frames > before)
        if wake:
            found.append((wake.model, wake.t))
    return np.array(scores), np.array(skipped), found


def test_with_the_silence_gate_every_positive_still_wakes_with_the_same_scores(manifest):
    x, spans = quiet_gaps_between_positives(manifest)
    plain, _, plain_wakes = scored(x, gate=False)
    gated, skipped, gated_wakes = scored(x, gate=True)
    assert skipped.mean() > 0.2, "the gate should rest the models in the quiet gaps"
    # Every score the gated detector computes is the ungated score, bit for bit: the rows it
    # skipped were rebuilt from the kept samples before any score that depends on them.
    assert np.array_equal(gated[~skipped], plain[~skipped])
    # What it skipped were scores over nothing but room noise: nowhere near a wake.
    assert plain[skipped].max() < 0.01
    assert gated_wakes == plain_wakes
    for model, start, end in spans:
        assert any(m == model and start < t <= end + 0.5 for m, t in gated_wakes), (model, start)


def test_the_gate_never_rests_on_a_sound_over_minus_40_dbfs():
    from guardd.listen.wake import EnergyGate

    gate = EnergyGate()
    rng = np.random.default_rng(7)
    loud_room = lambda dbfs: (rng.standard_normal(FRAME_SAMPLES) * 32768 * 10 ** (dbfs / 20)).astype(np.int16)
    for _ in range(100):  # a loud fan for 8 s: the floor rises to it, and the fan itself rests
        gate.loud(loud_room(-45))
    assert gate.floor_db > -46 and not gate.loud(loud_room(-45))
    assert gate.loud(loud_room(-38))  # only 7 dB over the floor, but over the -40 dBFS ceiling
    quiet = EnergyGate()
    for _ in range(100):
        quiet.loud(loud_room(-70))
    assert not quiet.loud(loud_room(-70)) and quiet.loud(loud_room(-55))


def wake_rule(scores: list[dict[str, float]], threshold: float, trigger: int, refractory_s: float) -> list:
    """The wake rule as documented, applied to a score for every frame: a model fires on its
    `trigger`-th consecutive frame at or above the threshold (with `trigger` 1, on the frame
    after it, with the higher of the two scores); the best such model wins, and after a wake no
    model fires for `refractory_s` while every count starts again from zero."""
    streak = dict.fromkeys(scores[0], 0)
    quiet_until, found = float("-inf"), []
    due: dict[str, float] = {}
    for k, frame_scores in enumerate(scores, 1):
        t = round(k * 0.08, 2)
        best = None
        for model, score in frame_scores.items():
            streak[model] = streak[model] + 1 if score >= threshold else 0
            if t < quiet_until:
                continue
            if model in due:
                heard = max(due[model], score)
                if best is None or heard > best[1]:
                    best = (model, heard, t)
            elif streak[model] >= trigger and trigger > 1:
                if best is None or score > best[1]:
                    best = (model, score, t)
            elif streak[model] >= trigger:
                due[model] = score
        if best:
            found.append(best)
            quiet_until = t + refractory_s
            streak = dict.fromkeys(streak, 0)
            due = {}
    return found


MIN_RUNS = {"positives": 40, "negatives": 1}  # the near misses reach 0.3 once in twelve minutes
RULES = {  # the fixtures, and the wake rules (trigger frames, refractory s) checked over them
    "positives": ((2, 2.0), (3, 2.0), (2, 0.0)),
    "negatives": ((2, 2.0),),  # the default rule; the runs the other two would see are in the positives
}


@pytest.mark.parametrize("part", RULES)
def test_scoring_only_the_frames_a_wake_needs_gives_exactly_the_wakes_of_scoring_every_frame(manifest, part):
    """Every fixture of one part, one after another, through all three shipped models at a low
    threshold so runs above it start and end everywhere, with the silence gate."""
    models = ["alexa", "hey_jarvis", "hey_mycroft"]
    x = np.concatenate([samples(manifest["dir"] / e["file"]) for e in manifest[part]])
    every = WakeDetector(models, threshold=2.0, trigger_frames=1, gate_silence=True)  # never fires
    dense = []
    for i, f in enumerate(frames(x)):
        every.process(f, round((i + 1) * 0.08, 2))
        dense.append(dict(every.last_scores))
    for trigger, refractory_s in RULES[part]:
        expected = wake_rule(dense, 0.3, trigger, refractory_s)
        detector = WakeDetector(models, 0.3, trigger, refractory_s, gate_silence=True)
        got = []
        for i, f in enumerate(frames(x)):
            wake = detector.process(f, round((i + 1) * 0.08, 2))
            if wake:
                got.append((wake.model, wake.score, wake.t))
        assert len(expected) >= MIN_RUNS[part], "the low threshold should give many runs to check"
        assert got == expected, (trigger, refractory_s)
        assert detector.classifier_runs < every.classifier_runs * (1 / trigger + 0.1), (trigger, refractory_s)


def test_a_models_own_threshold_overrides_the_common_one(manifest):
    x = loudest_positive(manifest)
    assert wakes(x, threshold=2.0, thresholds={"alexa": 0.5})  # its own, lower: it wakes
    assert not wakes(x, threshold=0.5, thresholds={"alexa": 2.0})  # its own, out of reach: it does not
    assert wakes(x, threshold=0.5, thresholds={"hey_jarvis": 2.0})  # another model's has no say
