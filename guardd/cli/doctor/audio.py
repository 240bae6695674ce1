"""Doctor's checks of the ears: PortAudio, the microphone (a second of real audio), the wake models."""

from __future__ import annotations

import queue
import time

from guardd.cli.doctor.result import Result, failed, passed
from guardd.config.settings import Config

SILENCE_PEAK = 8  # int16 samples: a microphone that never exceeds this is muted or absent
SAMPLE_S = 1.0  # seconds of audio read to judge the input


def check_portaudio() -> Result:
    from guardd.sounddevices import PORTAUDIO_HINT, import_sounddevice
    from guardd.errors import AudioError

    try:
        sd = import_sounddevice()
    except AudioError:
        return failed("PortAudio", "the PortAudio library is missing", PORTAUDIO_HINT.split("; ", 1)[1])
    return passed("PortAudio", sd.get_portaudio_version()[1])


def check_microphone(config: Config) -> Result:
    from guardd.listen.microphone import NO_INPUT_DEVICE, NO_INPUT_FIX, Microphone
    from guardd.sounddevices import list_devices
    from guardd.errors import AudioError

    name = "microphone"
    if not list_devices("input"):
        return failed(name, NO_INPUT_DEVICE, NO_INPUT_FIX)
    try:
        mic = Microphone(config.audio.device, queue_s=5)
        mic.start()
    except AudioError as exc:
        return failed(name, str(exc).split("; ")[0], "run `guardd devices` and set audio.device to your microphone")
    try:
        deadline = time.monotonic() + SAMPLE_S + 2
        blocks: list[bytes] = []
        while time.monotonic() < deadline and len(blocks) * 0.08 < SAMPLE_S:
            try:
                blocks.append(mic.frames.get(timeout=0.2)[1])
            except queue.Empty:
                continue
    finally:
        mic.stop()
    if not blocks:
        return failed(name, "the input device opened but delivered no audio in 3 s",
                     "check the microphone's cable and `arecord -l`; pick another audio.device")
    import numpy as np

    peak = int(np.abs(np.frombuffer(b"".join(blocks), dtype=np.int16)).max())
    if peak <= SILENCE_PEAK:
        return failed(name, f"{len(blocks) * 0.08:.1f} s of audio, all silent (peak {peak})",
                     "raise the capture level in alsamixer (F4) and check the microphone is not muted")
    return passed(name, f"{len(blocks) * 0.08:.1f} s of audio, peak level {peak}")


def check_models(config: Config) -> Result:
    """The wake models load, with onnxruntime's version (the pinned one carries no telemetry)."""
    from guardd.errors import ModelError
    from guardd.listen.features import install_models_command, models_missing
    from guardd.listen.verifier import configured
    from guardd.listen.wake import WakeDetector

    missing = models_missing(config.wake.builtin)
    if missing is not None:
        return failed("wake models", missing, install_models_command())
    started = time.monotonic()
    try:
        WakeDetector(list(config.wake.models), config.wake.threshold)
    except ModelError as exc:
        return failed("wake models", str(exc), "fix wake.models (`guardd check-config` names the problem)")
    try:
        looks = configured(config.wake)
    except ModelError as exc:
        return failed("wake models", str(exc), "reinstall guardd, or set wake.shipped_verifiers: false")
    import onnxruntime  # loaded by WakeDetector, its telemetry off (listen/onnxrt.py)

    also = f", with the shipped verifiers of {', '.join(looks)}" if looks else ""
    return passed("wake models", f"{', '.join(config.wake.models)} loaded in {time.monotonic() - started:.2f} s"
                                 f"{also} (onnxruntime {onnxruntime.__version__})")


def check_speaker(config: Config) -> Result:
    """Play 50 ms of silence on the configured speaker: it opens and takes samples, or the fix."""
    from guardd.sounddevices import import_sounddevice, list_devices, resolve_device
    from guardd.speak.earcons import SPEAKER_RATE
    from guardd.speak.player import SPEAKER_FIX

    name = "speaker"
    if config.announce.output == "none":
        return passed(name, "announce.output is none: guardd plays nothing (the LED still asks)")
    if not list_devices("output"):
        return failed(name, "no output device found (PortAudio sees none)", SPEAKER_FIX)
    sd = import_sounddevice()
    try:
        device = resolve_device(sd, config.audio.output_device, "output")
        with sd.RawOutputStream(samplerate=SPEAKER_RATE, channels=1, dtype="int16", device=device) as stream:
            stream.write(bytes(2 * (SPEAKER_RATE // 20)))  # 50 ms of 16-bit silence
    except Exception as exc:  # noqa: BLE001 - any failure to play is the finding
        return failed(name, f"cannot play: {str(exc).split('; ')[0]}", SPEAKER_FIX)
    which = "the default output" if config.audio.output_device is None else repr(config.audio.output_device)
    return passed(name, f"{which} plays ({SPEAKER_RATE} Hz mono)")


def check_speech() -> Result:
    """Say a short sentence with the speech engine, to nowhere: it is installed and speaks."""
    from guardd.speak.earcons import SPEAKER_RATE
    from guardd.speak.voice import ENGINE, INSTALL, VoiceError, find_voice

    name = "speech"
    voice = find_voice()
    if voice is None:
        return failed(name, f"no speech engine ({ENGINE}): requests are announced with a tone, not in words",
                      INSTALL)
    started = time.monotonic()
    try:
        said = voice.say("guardd can speak.")
    except VoiceError as exc:
        return failed(name, str(exc), f"reinstall it: {INSTALL} --reinstall")
    took = time.monotonic() - started
    return passed(name, f"{ENGINE} ({voice.program}) said {len(said) / SPEAKER_RATE:.1f} s of speech in {took * 1000:.0f} ms")
