"""`guardd tune`: how the owner's own voice scores, and a threshold that wakes on every take.

The owner says the wake word a few times: each take starts with a press of the button (Enter
with --simulate) and lasts TAKE_S, or comes from a file (--takes). For each take guardd shows
each model's peak score, how many frames in a row held the threshold, and whether the current
rule would have woken. Then, for the owner's model, the highest threshold (MARGIN under the
weakest take) at which every take wakes, and what it costs in false wakes an hour on the
held-out real speech guardd ships as scores (listen/negatives.py, REAL). `--write` puts it into the config
as `wake.thresholds.MODEL`, checked like any config, with a comment that says when.

Takes are scored in memory and not kept; nothing is logged and nothing leaves.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from guardd.audioformat import SAMPLE_RATE
from guardd.cli.common import load_config
from guardd.cli.tune_write import write_threshold
from guardd.config.settings import Config
from guardd.errors import GuarddError, ModelError
from guardd.listen import negatives
from guardd.listen.scores import held, scores_and_windows, second_look, wake_frames
from guardd.listen.verifier import SecondLook, Verifier, configured, load_all, path_for, train

TAKE_S = 3.0  # seconds recorded after each press
MARGIN = 0.02  # the suggestion sits this far under the weakest take's held score
LOWEST = 0.2  # no lower threshold is suggested: below it ordinary talk wakes the models
FA_TARGET = 0.5  # false wakes an hour past which a verifier is trained as well
RECORD = "arecord -f S16_LE -r 16000 -c 1 -d 3 take1.wav"


@dataclass(frozen=True)
class Take:
    name: str
    peak: dict[str, float]
    held: dict[str, float]  # the threshold that trigger_frames in a row still reach
    run: dict[str, int]  # the longest run of frames at or above the model's threshold
    woke: dict[str, bool]
    by_look: dict[str, bool]  # woke only by the second look (its own rule alone would not)
    scores: dict[str, np.ndarray]
    windows: dict[str, dict[int, np.ndarray]]  # model -> frame -> its window (frames at FLOOR or more)

    def wakes(self, model: str, threshold: float, frames: int, verifier: Verifier | None = None,
              look: SecondLook | None = None) -> bool:
        def accepts(k: int) -> bool:
            return verifier is None or (k in self.windows[model] and verifier.accepts(self.windows[model][k]))

        second = None if look is None else second_look(look, self.scores[model], self.windows[model])
        return bool(wake_frames(self.scores[model], threshold, frames, accepts, second))


def read_take(path: Path) -> np.ndarray:
    try:
        with wave.open(str(path), "rb") as w:
            shape = (w.getframerate(), w.getnchannels(), w.getsampwidth())
            data = w.readframes(w.getnframes())
    except (OSError, wave.Error, EOFError) as exc:
        raise GuarddError(f"{path}: cannot read it as a WAV file ({exc})") from None
    if shape != (SAMPLE_RATE, 1, 2):
        raise GuarddError(f"{path}: {shape[0]} Hz, {shape[1]} channel(s), {8 * shape[2]}-bit; a take must be "
                          f"16 kHz mono 16-bit: record one with `{RECORD}`")
    return np.frombuffer(data, dtype="<i2")


def record_takes(config: Config, count: int, simulate: bool) -> list[tuple[str, np.ndarray]]:
    from guardd.sounddevices import import_sounddevice, resolve_device

    sd = import_sounddevice()
    device = resolve_device(sd, config.audio.device, "input")
    if device is None and not has_input(sd):
        raise GuarddError("no microphone: PortAudio sees no input device (`guardd devices` lists what it sees; "
                          "`arecord -l` what ALSA has). Plug one in or set audio.device, or tune with --takes FILES")
    press = _stdin_press if simulate else _button_press(config)
    takes = []
    for i in range(1, count + 1):
        print(f"take {i} of {count}: {'press Enter' if simulate else 'press the button'}, then say the wake word",
              flush=True)
        if not press():
            break
        try:
            audio = sd.rec(int(TAKE_S * SAMPLE_RATE), samplerate=SAMPLE_RATE, channels=1, dtype="int16",
                           device=device)
            sd.wait()
        except Exception as exc:  # noqa: BLE001 - PortAudio's errors name no fix
            raise GuarddError(f"cannot record from the microphone ({exc}); {_why(str(exc))}") from None
        takes.append((f"take {i}", np.asarray(audio, dtype=np.int16).reshape(-1)))
    return takes


def has_input(sd: Any) -> bool:
    """Does PortAudio see any device that records?"""
    try:
        return any(d["max_input_channels"] > 0 for d in sd.query_devices())
    except sd.PortAudioError:
        return False


def _why(error: str) -> str:
    """The likely cause of a failed recording: a microphone held by another program (the daemon)
    is only named when PortAudio says the device is busy."""
    if any(word in error.lower() for word in ("unavailable", "busy", "-9985")):
        return ("another program holds it; if guardd is running: sudo systemctl stop guardd, tune, then start "
                "it again")
    return "check audio.device (`guardd devices` lists the inputs), or tune with --takes FILES"


def _stdin_press() -> bool:
    return sys.stdin.readline() != ""


def _button_press(config: Config):  # type: ignore[no-untyped-def]
    from gpiozero import Button
    from gpiozero.exc import BadPinFactory

    try:
        button = Button(config.button.pin, pull_up=config.button.pull_up)
    except BadPinFactory:
        raise GuarddError("no GPIO here for the button: tune with --simulate (Enter is the press) or "
                          "with --takes FILES") from None

    def press() -> bool:
        button.wait_for_press()
        button.wait_for_release()
        return True

    return press


@dataclass(frozen=True)
class Current:
    """The rule the config has now: each model's threshold, the owner's verifiers, the second looks."""

    config: Config
    verifiers: dict[str, Verifier]
    looks: dict[str, SecondLook]

    @classmethod
    def of(cls, config: Config) -> "Current":
        """The config's rule; an owner's verifier that cannot be loaded is left out and said
        (tuning again with --write is how it is made anew)."""
        looks = configured(config.wake)
        try:
            verifiers = load_all(config.state_path, config.wake.verify)
        except ModelError as exc:
            print(f"note: {exc}; the current rule below is without it")
            verifiers = {}
        return cls(config, verifiers, looks)

    def wakes(self, take: "Take", model: str, look: bool = True) -> bool:
        return take.wakes(model, self.config.wake.threshold_of(model), self.config.wake.trigger_frames,
                          self.verifiers.get(model), self.looks.get(model) if look else None)


def analyse(name: str, audio: np.ndarray, config: Config, current: Current) -> Take:
    scores, found = scores_and_windows(audio, list(config.wake.models), negatives.FLOOR)
    windows = {m: dict(zip(np.flatnonzero(scores[m] >= negatives.FLOOR).tolist(), w)) for m, w in found.items()}
    frames = config.wake.trigger_frames
    runs = {}
    for label, s in scores.items():
        above = np.concatenate([[0], (s >= config.wake.threshold_of(label)).astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(above))
        runs[label] = int((edges[1::2] - edges[::2]).max()) if len(edges) else 0
    take = Take(name, {m: float(s.max(initial=0.0)) for m, s in scores.items()},
                {m: held(s, frames) for m, s in scores.items()}, runs, {}, {}, scores, windows)
    take.woke.update({m: current.wakes(take, m) for m in scores})
    take.by_look.update({m: take.woke[m] and not current.wakes(take, m, look=False) for m in scores})
    return take


def verdict(take: Take, model: str, current: "Current") -> str:
    """Whether the take wakes, and by what: the rule's frames, or the second look's one frame."""
    if not take.woke[model]:
        return "would NOT wake"
    if take.by_look[model]:
        look = current.looks[model]
        return (f"wakes by the second look (a frame at {look.threshold:g} or more that guardd's verifier for "
                f"{model} took for the wake word)")
    return "wakes"


def suggest(takes: list[Take], model: str) -> float | None:
    """The highest threshold, in hundredths, MARGIN under the weakest take; None below LOWEST."""
    need = min(t.held[model] for t in takes)
    threshold = math.floor((need - MARGIN) * 100) / 100
    return threshold if threshold >= LOWEST else None


def cmd_tune(args: argparse.Namespace) -> int:
    config = load_config(args)
    if args.takes:
        audio = [(str(p), read_take(Path(p))) for p in args.takes]
    else:
        audio = record_takes(config, args.count, args.simulate)
    if not audio:
        raise GuarddError("no takes: say the wake word after each press, or give --takes FILES")
    current = Current.of(config)
    takes = [analyse(name, x, config, current) for name, x in audio]
    labels = config.wake.labels
    frames = config.wake.trigger_frames
    for t in takes:
        print(f"{t.name}:")
        for m in labels:
            print(f"  {m:<12} peak {t.peak[m]:.2f}, {t.run[m]} frame(s) in a row at or above "
                  f"{config.wake.threshold_of(m):g}: {verdict(t, m, current)}")
    model = args.model or max(labels, key=lambda m: float(np.median([t.peak[m] for t in takes])))
    if model not in labels:
        raise GuarddError(f"--model {model}: not in wake.models ({', '.join(labels)})")
    current_threshold = config.wake.threshold_of(model)
    woken = sum(t.woke[model] for t in takes)
    print(f"\n{model}: {woken} of {len(takes)} takes wake at the current rule ({current_threshold:g}, {frames} frames"
          + (", and the shipped verifier" if model in current.looks else "") + ")")
    lost = model in config.wake.verify and model not in current.verifiers  # wake.verify names a lost file
    if woken == len(takes) and not lost:
        print(f"every take already wakes (the weakest holds {min(t.held[model] for t in takes):.2f}). "
              "Nothing to change.")
        return 0
    threshold = suggest(takes, model)
    shipped = negatives.load(negatives.REAL)
    if threshold is None:
        print(f"no threshold of {LOWEST:g} or more wakes on every take (the weakest holds "
              f"{min(t.held[model] for t in takes):.2f}): say it closer to the microphone, or use another model")
        return 1
    print(f"suggested: wake.thresholds.{model}: {threshold:g} (every take wakes; the weakest holds "
          f"{min(t.held[model] for t in takes):.2f} for {frames} frames)")
    look = current.looks.get(model)
    cost = shipped.per_hour(model, threshold, frames, half=1, look=look) if shipped else None
    if cost is None:
        print("  its cost in false accepts is not known: guardd ships negative scores for the built-in models only")
    else:
        now = shipped.per_hour(model, current_threshold, frames, half=1, look=look)
        print(f"  false wakes on {shipped.half_hours[1]:.1f} h of real recorded speech, mostly English (held out "
              f"from every choice guardd made; docs/ears.md): {cost:.2f} an hour at {threshold:g}, {now:.2f} at "
              f"{current_threshold:g}"
              + (f" (each with the shipped verifier's second look from {look.threshold:g})" if look else ""))
    verifier = None
    if cost is not None and cost > FA_TARGET and shipped is not None and model in shipped.kept:
        verifier = owner_verifier(takes, model, threshold, frames, shipped, look)
    if args.write:
        note = (f"tuned by guardd tune on {datetime.date.today().isoformat()}: {len(takes)} takes, "
                f"the weakest held {min(t.held[model] for t in takes):.2f}")
        if verifier is not None:
            save_verifier(verifier, config)  # first: the config must never name a verifier not there
        path = write_threshold(config, model, threshold, note, verify=verifier is not None)
        print(f"written to {path}; `sudo systemctl reload guardd` applies it")
    return 0


def owner_verifier(takes: list[Take], model: str, threshold: float, frames: int,
                   shipped: negatives.Negatives, look: SecondLook | None) -> Verifier | None:
    """A verifier on the takes' windows at the threshold against half the shipped negatives',
    judged on the other half; None (and said) when it would not let every take wake."""
    positives = [w for t in takes for k, w in t.windows[model].items() if t.scores[model][k] >= threshold]
    verifier = train(model, np.array(positives), shipped.training_windows(model))
    woken = sum(t.wakes(model, threshold, frames, verifier, look) for t in takes)
    cost = shipped.per_hour(model, threshold, frames, verifier, half=1, look=look)
    without = shipped.per_hour(model, threshold, frames, half=1, look=look)
    print(f"  with a verifier of your voice (trained on these takes): {woken} of {len(takes)} takes wake; "
          f"false wakes {cost:.2f} an hour on the real speech it did not learn from ({without:.2f} without it)")
    if woken < len(takes):
        print("  the verifier is not used: it would turn some of your own takes away")
        return None
    return verifier


def save_verifier(verifier: Verifier, config: Config) -> None:
    """Into the state directory, owned like it (the daemon runs as its own user)."""
    import os

    path = path_for(config.state_path, verifier.model)
    verifier.save(path)
    st = config.state_path.stat()
    if os.geteuid() == 0:
        os.chown(path.parent, st.st_uid, st.st_gid)
        os.chown(path, st.st_uid, st.st_gid)
    print(f"verifier written to {path}")
