"""Real people talking do not wake guardd: two recordings of real speech (229 s, from
silero-vad's source distribution) and variants of them as a room would hear them, through the
shipped models at the default settings (their rule and the second look guardd ships), while
stock openWakeWord's rule, which an owner may choose (docs/ears.md), does wake on them. The
recordings are used only as their pinned hash says."""

from __future__ import annotations

import hashlib

import pytest

from corpus import realspeech
from corpus.audio import read_wav
from guardd.audioformat import FRAME_SAMPLES
from guardd.config.settings import BUILTIN_MODELS, WakeConfig
from guardd.listen.verifier import configured
from guardd.listen.wake import WakeDetector

VARIANTS_CHECKED = 4  # the recordings as they are and three variants: 15 minutes of audio
STOCK = WakeConfig(threshold=0.5, trigger_frames=1, shipped_verifiers=False)


def wakes_in(samples, models, wake: WakeConfig) -> list[tuple[str, float]]:
    wake = WakeConfig(**{**vars(wake), "models": tuple(models)})
    detector = WakeDetector(list(models), wake.threshold, wake.trigger_frames, wake.refractory_s,
                            gate_silence=wake.gate_silence, thresholds=wake.per_model,
                            second_looks=configured(wake))
    found = []
    for k in range(len(samples) // FRAME_SAMPLES):
        hit = detector.process(samples[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], (k + 1) * 0.08)
        if hit is not None:
            found.append((hit.model, round(hit.t, 2)))
    return found


def test_real_speech_wakes_none_of_the_shipped_models_at_the_defaults(real_speech):
    paths = list(realspeech.variants(real_speech, VARIANTS_CHECKED))
    minutes, stock = 0.0, 0
    for path in paths:
        samples = read_wav(path)
        minutes += len(samples) / 16000 / 60
        assert wakes_in(samples, BUILTIN_MODELS, WakeConfig()) == [], path.name
        stock += len(wakes_in(samples, BUILTIN_MODELS, STOCK))
    assert minutes > 14 and stock > 0  # the same audio can wake a looser rule: it is no empty test


def test_the_variants_are_the_same_every_time(real_speech, tmp_path):
    made = realspeech.variant(realspeech.recordings(realspeech.fetch(real_speech)), 3)
    on_disk = read_wav(next(p for i, p in enumerate(realspeech.variants(real_speech, 4)) if i == 3))
    assert hashlib.sha256(made.tobytes()).digest() == hashlib.sha256(on_disk.tobytes()).digest()


def test_a_source_distribution_with_the_wrong_hash_is_refused_and_deleted(tmp_path):
    directory = tmp_path / f"real-speech-{realspeech.SDIST_SHA256[:12]}"
    directory.mkdir()
    impostor = directory / realspeech.SDIST
    impostor.write_bytes(b"not the silero-vad 6.2.3 source distribution")
    with pytest.raises(RuntimeError, match="SHA-256"):
        realspeech.fetch(tmp_path)
    assert not impostor.exists()
    assert not any(directory.glob("*.wav"))
