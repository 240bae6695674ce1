"""Through `guardd replay --json`, as an owner or an outside check runs it: the wake word is heard
in spoken requests, never in ordinary talk, and the kept utterance spans exactly the request.
The requests go through one replay and the talk through another, each as one long recording."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import replay_events
from harness import write_config

from corpus.audio import SAMPLE_RATE, read_wav, write_wav
from guardd.config.settings import UtteranceConfig

FRAME_S = 0.08
PRE_ROLL_LIMIT_S = 0.3  # the bound: the utterance starts at most this long before speech


GAP_S = 3.0  # of silence after each spoken request: past the trailing silence and the refractory time


@pytest.fixture(scope="module")
def positive_events(tmp_path_factory, manifest) -> dict[str, list[dict[str, Any]]]:
    """Every spoken request, one after another with GAP_S of silence between (each padded to
    whole 80 ms frames), through one `guardd replay`; each request's events, with their times
    counted from the start of its own file again."""
    work = tmp_path_factory.mktemp("positives")
    pieces, starts, at = [], [], 0
    for entry in manifest["positives"]:
        x = read_wav(manifest["dir"] / entry["file"])
        length = -(-(len(x) + int(GAP_S * SAMPLE_RATE)) // 1280) * 1280
        pieces.append(np.concatenate([x, np.zeros(length - len(x), np.int16)]))
        starts.append(at)
        at += length
    write_wav(work / "requests.wav", np.concatenate(pieces))
    events = replay_events(work / "requests.wav", write_config(work))
    by_file: dict[str, list[dict[str, Any]]] = {e["file"]: [] for e in manifest["positives"]}
    for event in events:
        i = max(k for k, s in enumerate(starts) if s <= round(event["t"] * SAMPLE_RATE) - 1)
        offset = starts[i] / SAMPLE_RATE
        moved = {**event, "t": event["t"] - offset}
        if event["event"] == "utterance":
            moved.update(start=event["start"] - offset, end=event["end"] - offset,
                         path=work / "state" / "recordings" / event["file"])
        by_file[manifest["positives"][i]["file"]].append(moved)
    return by_file


def test_wake_word_is_heard_in_at_least_95_percent_of_spoken_requests(positive_events, manifest):
    heard = []
    for entry in manifest["positives"]:
        wakes = [e for e in positive_events[entry["file"]] if e["event"] == "wake"]
        if len(wakes) == 1 and wakes[0]["model"] == entry["model"]:
            heard.append(entry["file"])
    assert len(manifest["positives"]) >= 40
    assert len(heard) >= 0.95 * len(manifest["positives"]), sorted(
        set(e["file"] for e in manifest["positives"]) - set(heard)
    )


def test_wake_fires_after_the_wake_word_and_before_the_request(positive_events, manifest):
    for entry in manifest["positives"]:
        for wake in (e for e in positive_events[entry["file"]] if e["event"] == "wake"):
            assert entry["wake_start"] < wake["t"] <= entry["command_start"] + FRAME_S, entry["file"]


def test_utterance_starts_just_before_the_request_and_ends_one_trailing_silence_after_it(
    positive_events, manifest
):
    trailing = UtteranceConfig().trailing_silence_s
    checked = 0
    for entry in manifest["positives"]:
        kept = [e for e in positive_events[entry["file"]] if e["event"] == "utterance"]
        if not any(e["event"] == "wake" for e in positive_events[entry["file"]]):
            continue
        assert len(kept) == 1, entry["file"]
        utt = kept[0]
        assert entry["command_start"] - PRE_ROLL_LIMIT_S <= utt["start"] <= entry["command_start"], entry
        assert entry["command_end"] <= utt["end"] <= entry["command_end"] + trailing + FRAME_S, entry
        checked += 1
    assert checked >= 0.95 * len(manifest["positives"])


def test_the_kept_audio_is_the_heard_audio_at_the_times_it_is_logged_at(positive_events, manifest):
    compared = 0
    for entry in manifest["positives"]:
        for utt in (e for e in positive_events[entry["file"]] if e["event"] == "utterance"):
            source = read_wav(manifest["dir"] / entry["file"])
            kept = read_wav(utt["path"])
            # Logged times are rounded to 1 ms; with the default settings every start falls on a
            # 10 ms grid (frames, look-back, pre-roll and VAD sub-frames all are), so it is exact.
            first = round(utt["start"] * SAMPLE_RATE)
            assert len(kept) == round((utt["end"] - utt["start"]) * SAMPLE_RATE), entry["file"]
            # Past the file's end the capture hears silence, as a microphone in a quiet room would.
            heard = np.zeros(len(kept), np.int16)
            tail = source[first : first + len(kept)]
            heard[: len(tail)] = tail
            assert np.array_equal(kept, heard), entry["file"]
            compared += 1
    assert compared >= 0.95 * len(manifest["positives"])


def test_no_wake_in_ten_minutes_of_ordinary_talk_with_near_misses(tmp_path, manifest):
    """Every negative fixture, one after another, as one long recording: one replay, as a day of
    kitchen talk would reach the daemon."""
    assert manifest["negative_seconds"] >= 600
    talk = np.concatenate([read_wav(manifest["dir"] / e["file"]) for e in manifest["negatives"]])
    assert len(talk) / SAMPLE_RATE >= 600
    write_wav(tmp_path / "talk.wav", talk)
    events = replay_events(tmp_path / "talk.wav", write_config(tmp_path))
    woke = [(e["t"], e["model"], e["score"]) for e in events if e["event"] == "wake"]
    assert woke == []
    assert not any(e["event"] == "utterance" for e in events)
