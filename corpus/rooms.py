"""Simulated rooms for the ears' evaluation: impulse responses from pyroomacoustics' image-source
method (MIT licence), run once in the generation venv (corpus/neural.py) and cached; guardd never
imports it. Rooms from a small bathroom to a big living room, the talker 1 to 4 m from the
microphone; even-numbered rooms are the tuning part's, odd ones held out.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

import numpy as np

ROOMS = 24
SEED = 20261206
VERSION = "rooms-1"

_SCRIPT = """
import sys, numpy as np, pyroomacoustics as pra
rng = np.random.default_rng(int(sys.argv[2])); out = []
for i in range(int(sys.argv[3])):
    dims = np.array([rng.uniform(2.5, 8.0), rng.uniform(2.5, 6.0), rng.uniform(2.4, 3.0)])
    rt60 = rng.uniform(0.2, 0.9)
    absorption, order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=16000, materials=pra.Material(absorption), max_order=min(order, 17))
    mic = np.array([rng.uniform(0.5, dims[0] - 0.5), rng.uniform(0.5, dims[1] - 0.5), 1.0])
    for _ in range(100):
        src = np.array([rng.uniform(0.3, dims[0] - 0.3), rng.uniform(0.3, dims[1] - 0.3), 1.6])
        if 1.0 <= np.linalg.norm(src - mic) <= 4.0: break
    room.add_source(src); room.add_microphone(mic); room.compute_rir()
    h = np.asarray(room.rir[0][0], np.float64)[:16000]
    out.append(np.pad(h, (0, 16000 - len(h))) / np.abs(h).max())
np.save(sys.argv[1], np.array(out, np.float32))
"""


def impulse_responses(cache: Path, python: Callable[[], Path]) -> np.ndarray:
    """(ROOMS, 16000) impulse responses at 16 kHz, peak 1; made once with `python()`'s venv."""
    path = cache / f"{VERSION}-{SEED}-{ROOMS}.npy"
    if not path.is_file():
        tmp = path.with_name(path.stem + ".tmp.npy")
        subprocess.run([str(python()), "-c", _SCRIPT, str(tmp), str(SEED), str(ROOMS)], check=True)
        tmp.replace(path)
    return np.load(path)


def in_room(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """`x` as heard across the room `h` (FFT convolution), its length kept."""
    n = len(x) + len(h) - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: len(x)]
    return y
