"""guardd's own short sounds, made in code (no sound files): one for a request starting to ask,
one for each way it can end, and a timer's ring. Each is a few notes of a sine with 10 ms
fades, so each is told apart by its notes: rising for asking and approval, falling for a
denial, high for a send, low and doubled for a failure, for a request Home Assistant took but
had no answer to a fall and a rise that ends where it began (a "hm?"), and for a ring four
short beeps higher than any of them, two pitches in turn, which the core repeats (timers.py).
"""

from __future__ import annotations

import numpy as np

SPEAKER_RATE = 22050  # hertz: espeak-ng's own rate, so speech needs no resampling either
FADE_S = 0.01

# confirm.messages.outcome_of's names, and "ring" -> the notes, (hertz, seconds); 0 hertz is a rest
EARCONS: dict[str, tuple[tuple[float, float], ...]] = {
    "asking": ((660.0, 0.12), (880.0, 0.12)),
    "approved": ((523.3, 0.08), (659.3, 0.08), (784.0, 0.12)),
    "denied": ((440.0, 0.15), (330.0, 0.25)),
    "sent": ((784.0, 0.08), (1046.5, 0.16)),
    "failed": ((220.0, 0.12), (0.0, 0.06), (220.0, 0.12)),
    "not_understood": ((587.3, 0.1), (392.0, 0.12), (587.3, 0.16)),
    "ring": ((1318.5, 0.07), (0.0, 0.04), (1568.0, 0.07), (0.0, 0.04), (1318.5, 0.07), (0.0, 0.04), (1568.0, 0.07)),
}


def render(name: str, volume: float) -> np.ndarray:
    """The earcon as int16 samples at SPEAKER_RATE, its peak at `volume` of full scale."""
    parts = []
    fade = int(FADE_S * SPEAKER_RATE)
    for hz, seconds in EARCONS[name]:
        n = int(seconds * SPEAKER_RATE)
        if hz == 0:
            parts.append(np.zeros(n))
            continue
        note = np.sin(2 * np.pi * hz * np.arange(n) / SPEAKER_RATE)
        ramp = np.linspace(0.0, 1.0, fade)
        note[:fade] *= ramp
        note[-fade:] *= ramp[::-1]
        parts.append(note)
    x = np.concatenate(parts) * volume * 32767
    return np.round(x).astype(np.int16)


def dominant_hz(x: np.ndarray) -> float:
    """The strongest frequency in a stretch of samples at SPEAKER_RATE (for telling notes apart)."""
    n = max(len(x), SPEAKER_RATE)  # zero-padded to a second: 1 Hz bins, however short the stretch
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x)), n))
    return float(np.argmax(spectrum) * SPEAKER_RATE / n)
