"""Assembles the core and its adapters from a config; `run` and `replay` differ only in where
audio, button presses and time come from."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from guardd.auditlog.writer import AuditLog
from guardd.config.settings import Config
from guardd.confirm.sender import Sender
from guardd.core import Core, Emit, Speaks
from guardd.device.panel import ButtonEdge, LedState, Panel
from guardd.journal import Journal
from guardd.listen.endpoint import webrtc_vad
from guardd.listen.recordings import Recordings
from guardd.listen.verifier import load_all as load_verifiers
from guardd.listen.verifier import configured as configured_looks
from guardd.listen.wake import WakeDetector
from guardd.speak.player import DeviceOutput, NoOutput, Player
from guardd.speak.voice import find_voice
from guardd.homeassistant.link import Link

log = logging.getLogger(__name__)


class Inputs(list):  # of ButtonEdge | SendResult | SpeakerNews
    """Button edges, send results and the speaker's news waiting for the core, in the order they came: what `run`'s
    inbox does, for replay, the benchmark and the tests. drain() after each step of the core."""

    def drain(self, core: Core) -> None:
        while self:
            core.take(self.pop(0))


@dataclass
class Pipeline:
    core: Core
    panel: Panel
    auditlog: AuditLog
    inputs: Inputs  # where edges, results and the speaker's news go unless the caller took them


def log_dir(config: Config) -> Any:
    return config.state_path / "log"


def speaker_output(config: Config) -> DeviceOutput | NoOutput:
    return NoOutput() if config.announce.output == "none" else DeviceOutput(config.audio.output_device)


@contextmanager
def open_pipeline(
    config: Config,
    *,
    pin_factory: Any,
    clock: Callable[[], float],
    emit: Emit,
    on_edge: Callable[[ButtonEdge], None] | None = None,
    sender: Sender | None = None,
    speaker: Speaks | None = None,
    on_show: Callable[[LedState], None] | None = None,
    wall_clock: Callable[[], float] = time.time,
    muted: bool = False,
    persist_mute: Callable[[bool], None] | None = None,
    paused: bool = False,
    persist_pause: Callable[[bool], None] | None = None,
    journal: Callable[[AuditLog], Journal] | None = None,
    blink_thread: bool = True,
    peer: Link | None = None,
) -> Iterator[Pipeline]:
    """Open the log, load the models, set up the panel; close all of them on the way out.

    The panel's edges, the sender's results and the speaker's news are inputs, fed to the core
    one at a time after the step that caused them: to `on_edge` and the given sender's and
    speaker's own target (the daemon's inbox), or else into Pipeline.inputs, with a sender that
    sends at once and a speaker that plays at once (audio time stands still; the speaker dates
    its sounds as if each took its own length), each queuing what happened there. The core writes to the audit log itself, or through
    what `journal` makes of it (a test's journal that fails on demand). The LED blinks on real time
    by a thread of its own, unless `blink_thread` is False: then it follows whoever moves the
    clock and calls panel.update() (replay and the benchmark, on audio time). `peer` is Home
    Assistant's link, Wyoming or ESPHome (the daemon starts it; None: off)."""
    inputs = Inputs()
    wake = WakeDetector(
        list(config.wake.models),
        config.wake.threshold,
        config.wake.trigger_frames,
        config.wake.refractory_s,
        gate_silence=config.wake.gate_silence,
        thresholds=config.wake.per_model,
        verifiers=load_verifiers(config.state_path, config.wake.verify),
        second_looks=configured_looks(config.wake),
    )
    vad = webrtc_vad(config.utterance.vad_aggressiveness)
    auditlog = AuditLog(log_dir(config), rotation=config.log)
    auditlog.open()
    try:
        panel = Panel(
            config.led,
            config.button,
            pin_factory=pin_factory,
            clock=clock,
            on_edge=on_edge or inputs.append,
            on_show=on_show,
            blink_thread=blink_thread,
        )
        try:
            core = Core(
                config,
                wake=wake,
                vad=vad,
                journal=journal(auditlog) if journal else auditlog,
                recordings=Recordings(config.state_path / "recordings", config.retention),
                show=panel.show,
                clock=clock,
                wall_clock=wall_clock,
                emit=emit,
                sender=sender or Sender(inputs.append, threaded=False),
                speaker=speaker or Player(speaker_output(config), config.announce.volume, find_voice(),
                                          inputs.append, clock=clock, threaded=False),
                button_down=panel.button_is_down,
                muted=muted,
                persist_mute=persist_mute,
                paused=paused,
                persist_pause=persist_pause,
                peer=peer,
            )
            yield Pipeline(core, panel, auditlog, inputs)
        finally:
            panel.close()
    finally:
        auditlog.close()
