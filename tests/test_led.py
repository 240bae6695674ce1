"""Promise 2 for the listening half: the LED, a real gpiozero LED on MockFactory pins, is lit on
exactly the frames during which audio after a wake word is being kept, and dark otherwise."""

from __future__ import annotations

from pathlib import Path

from harness import write_config

from guardd.config import load as configmod
from guardd.listen.microphone import read_wav_frames
from guardd.device.panel import LedState, mock_factory
from guardd.pipeline import open_pipeline


def lit_frames(config_path: Path, wav: Path) -> tuple[list[bool], list[bool], list[dict]]:
    """Per frame: whether the LED pin is high, whether audio is being kept; and the events."""
    events: list[dict] = []
    t = [0.0]
    lit, keeping = [], []
    config = configmod.load(config_path)
    with open_pipeline(config, pin_factory=mock_factory(), clock=lambda: t[0],
                       on_edge=lambda e: None, emit=events.append) as p:
        p.core.start(mode="test")
        pin = p.panel.led.pin
        for frame in list(read_wav_frames(wav)) + [bytes(2560)] * 50:
            p.core.on_audio(frame)
            t[0] = p.core.listener.audio_t
            lit.append(bool(pin.state))
            keeping.append(p.core.recording)
        p.core.stop("test")
        assert p.panel.state is LedState.OFF and not pin.state
    return lit, keeping, events


def test_led_is_lit_exactly_while_audio_after_the_wake_word_is_kept(tmp_path, manifest):
    positive = manifest["positives"][0]
    lit, keeping, events = lit_frames(write_config(tmp_path), manifest["dir"] / positive["file"])
    assert [e["event"] for e in events] == ["wake", "utterance"]
    assert any(lit), "the LED never lit"
    assert lit == keeping
    # Lit from the wake frame up to (not including) the frame where the utterance was kept.
    first, last = lit.index(True), len(lit) - 1 - lit[::-1].index(True)
    assert round((first + 1) * 0.08, 2) == round(events[0]["t"], 2)
    assert round((last + 2) * 0.08, 2) == round(events[1]["t"], 2)
    assert all(lit[first : last + 1])


def test_led_stays_dark_through_speech_without_a_wake_word(tmp_path, manifest):
    negative = manifest["negatives"][0]
    lit, _, events = lit_frames(write_config(tmp_path), manifest["dir"] / negative["file"])
    assert events == []
    assert not any(lit)
