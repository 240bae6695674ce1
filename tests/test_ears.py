"""The ears' evaluation (corpus/ears.py, benchmark/ears.py): it cannot be overfit (the halves
share no speaker and no request), its conditions are what they say (the SNR is the SNR), and a
rule judged on the recorded scores wakes exactly where guardd's detector wakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark import ears as bench
from corpus import ears
from corpus.voices import Voice, all_voices, espeak_voices

from guardd.audioformat import FRAME_S, FRAME_SAMPLES
from guardd.listen.scores import REFRACTORY_FRAMES
from guardd.listen.wake import WakeDetector


def test_the_halves_share_no_speaker_and_no_request():
    takes = [t for t, _, _ in ears.plan(all_voices())]
    halves = {}
    for t in takes:
        halves.setdefault(t.speaker, set()).add(t.half)
    assert all(len(h) == 1 for h in halves.values())  # every speaker, all its variants, in one half
    requests = {half: {t.text.split(", ", 1)[1] for t in takes if t.kind == "positive" and t.half == half}
                for half in ("tune", "held-out")}
    assert requests["tune"] and requests["held-out"] and not requests["tune"] & requests["held-out"]
    engines = {t.engine for t in takes}
    for engine in engines:  # each engine with two speakers or more is in both halves
        speakers = {t.speaker for t in takes if t.engine == engine}
        if len(speakers) > 1:
            assert {t.half for t in takes if t.engine == engine} == {"tune", "held-out"}


def test_every_condition_is_said_by_several_voices_and_none_of_the_fixtures_requests_are_used():
    from corpus.texts import COMMANDS

    takes = [t for t, _, _ in ears.plan(all_voices())]
    for condition in ears.CONDITIONS:
        assert len({t.voice for t in takes if t.condition == condition}) >= 4, condition
    assert not set(ears.REQUESTS) & set(COMMANDS)


@pytest.mark.parametrize("snr_db", [20.0, 10.0, 5.0])
def test_noise_is_added_at_the_stated_snr(snr_db):
    rng = np.random.default_rng(1)
    speech = np.sin(np.arange(32000) * 0.07) * 0.3
    noisy = ears.with_snr(speech, snr_db, rng)
    measured = 10 * np.log10(np.mean(speech**2) / np.mean((noisy - speech) ** 2))
    assert measured == pytest.approx(snr_db, abs=0.3)


def test_a_take_is_as_loud_as_its_condition_says(tmp_path):
    voice = espeak_voices()[0]
    take = ears.Take("t.wav", "positive", "alexa", voice.name, voice.engine, voice.speaker, voice.family,
                     "tune", "quiet", "alexa, read me the headlines")
    x = ears.spoken(take, voice, {"phrase": "alexa", "request": "read me the headlines"}, np.random.default_rng(0))
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(-30.0, abs=0.5)


def test_every_engine_renders_16_khz_speech():
    for voice in {v.engine: v for v in all_voices()}.values():
        x = voice.render("alexa", 1.0)
        assert 0.2 < len(x) / 16000 < 2.0 and np.abs(x).max() == pytest.approx(1.0), voice


def test_a_rule_on_the_recorded_scores_wakes_where_guardds_detector_wakes(manifest):
    entries = manifest["positives"][:6] + manifest["negatives"][:2]
    for entry in entries:
        path = Path(manifest["dir"]) / entry["file"]
        scores, _ = bench.trace(str(path))
        from corpus.audio import read_wav

        x = read_wav(path)
        for model in bench.MODELS:
            detector = WakeDetector([model], 0.7, 2, 2.0)
            woke = [k for k in range(len(x) // FRAME_SAMPLES)
                    if detector.process(x[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], (k + 1) * FRAME_S)]
            assert bench.DEFAULT.wakes(model, scores[model]) == woke, (entry["file"], model)


def test_the_rules_read_runs_and_the_refractory_time():
    two = bench.simple("t", 0.5, 2)
    assert two.wakes("alexa", np.array([0.6, 0.4, 0.6, 0.6, 0.9])) == [3]
    one = bench.simple("t", 0.5, 1)
    scores = np.full(60, 0.8)
    assert one.wakes("alexa", scores) == [0, REFRACTORY_FRAMES, 2 * REFRACTORY_FRAMES]


def test_held_is_the_highest_threshold_a_run_of_frames_still_reaches():
    from guardd.listen.scores import held

    scores = np.array([0.1, 0.8, 0.6, 0.9, 0.2])
    assert held(scores, 1) == pytest.approx(0.9) and held(scores, 2) == pytest.approx(0.6)
    assert held(scores, 3) == pytest.approx(0.6) and held(scores[:1], 2) == 0.0


def test_a_voice_is_split_by_its_base_not_its_variant():
    assert Voice("espeak-ng", "en-gb-scotland+m3").speaker == Voice("espeak-ng", "en-gb-scotland").speaker
    assert Voice("flite", "slt").speaker != Voice("flite", "rms").speaker


def test_the_second_looks_cannot_learn_from_the_held_out_half():
    scores = {m: np.zeros(10, np.float32) for m in bench.MODELS}
    held_out = ({"file": "x.wav", "half": "held-out", "model": "alexa", "speaker": "s"}, (scores, {m: {} for m in bench.MODELS}))
    with pytest.raises(ValueError, match="tuning half only, not x.wav"):
        bench.train_look("alexa", [held_out], None, (0,))
    with pytest.raises(ValueError, match="negatives' half 0 only"):
        bench.train_look("alexa", [], None, (2,))
