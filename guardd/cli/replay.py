"""`guardd replay AUDIO.wav`: the `run` pipeline fed from a file as fast as the CPU allows, on
audio time, with the LED and button on gpiozero's mock pins and presses at given audio times.

After the file ends, silence keeps the clock going until the utterance in progress is over and
every press time has passed, so what happens at the end of the file is decided, not cut off.
With no state_dir configured it works in a fresh scratch directory, never in the daemon's, and
deletes it at the end: the recordings of a test replay do not stay behind in /tmp.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, TextIO

from guardd.audioformat import FRAME_BYTES, FRAME_S
from guardd.listen.microphone import read_wav_frames
from guardd.config.settings import Config, UnchosenStateDir
from guardd.device.terminal import LED_DRAWING, describe
from guardd.device.panel import LedState, mock_factory
from guardd.pipeline import open_pipeline

PRESS_HOLD_S = 0.1  # a simulated press is held this long, a quick human tap
SILENCE = bytes(FRAME_BYTES)


@contextlib.contextmanager
def scratch_state(config: Config, err: TextIO) -> Iterator[Config]:
    """The config with a fresh scratch state_dir when none was configured, deleted on the way
    out: a test replay must not start (or append to) the owner's real audit log, nor make its
    sealing key, nor leave recordings behind."""
    if not isinstance(config.state_dir, UnchosenStateDir):
        yield config
        return
    scratch = tempfile.mkdtemp(prefix="guardd-replay-")
    err.write(f"replay: no state_dir configured, so its log and recordings are in {scratch} "
              "while it runs and deleted after; set state_dir in a config to keep them\n")
    try:
        yield dataclasses.replace(config, state_dir=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def replay(
    config: Config,
    wav: Path,
    *,
    json_out: bool = False,
    press_at: list[float] | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    frames = read_wav_frames(wav)
    first = next(frames, None)  # fail on a bad file before the log records a start
    with scratch_state(config, err) as config:
        return _replay(config, wav, frames, first, json_out=json_out, press_at=press_at, out=out)


def _replay(config: Config, wav: Path, frames: Iterator[bytes], first: bytes | None, *, json_out: bool,
            press_at: list[float] | None, out: TextIO) -> int:
    pending = sorted(press_at or [])
    events: list[dict[str, Any]] = []

    def emit(event: dict[str, Any]) -> None:
        events.append(event)
        if json_out:
            out.write(json.dumps(event, sort_keys=True) + "\n")
        else:
            out.write(f"{event['t']:8.2f}s  {describe(event)}\n")
        out.flush()

    def draw(state: LedState) -> None:
        if not json_out:
            out.write(f"{audio_t:8.2f}s  [LED {LED_DRAWING[state]}]\n")

    audio_t = 0.0
    with open_pipeline(
        config,
        pin_factory=mock_factory(),
        clock=lambda: audio_t,
        emit=emit,
        on_show=draw,
        blink_thread=False,  # on audio time: the LED is drawn, not blinked
    ) as p:
        core = p.core
        pin = p.panel.button.pin
        releases: list[float] = []
        core.start(mode="replay", file=wav.name)

        def press_due() -> None:
            # Edges land in p.inputs synchronously (MockPin runs callbacks in the caller's thread).
            while pending and pending[0] <= audio_t:
                pending.pop(0)
                pin.drive_low()
                releases.append(audio_t + PRESS_HOLD_S)
            while releases and releases[0] <= audio_t:
                releases.pop(0)
                pin.drive_high()
            p.inputs.drain(core)

        def feed(frame: bytes) -> None:
            nonlocal audio_t
            press_due()  # edges are stamped at the start of the frame they precede
            audio_t = round(audio_t + FRAME_S, 6)  # the core works at the frame's end
            core.on_audio(frame)
            p.inputs.drain(core)  # (a send approved in this step has its result already)
            core.tick()
            p.inputs.drain(core)

        if first is not None:
            feed(first)
            for frame in frames:
                feed(frame)
        while core.recording or pending or releases or core.broker.busy:
            feed(SILENCE)
        core.stop("end of file")
    return 0
