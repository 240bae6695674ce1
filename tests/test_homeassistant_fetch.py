"""What guardd fetches when Home Assistant names a sound by URL (homeassistant/fetch.py): only
http, only from the peer's own address; WAV of 16-bit samples read as it comes however its bytes
are cut, or MP3 and FLAC decoded by the real libsndfile (and no other format handed to it); and
a real HTTP server on loopback for the bounds (a redirect, a size, a stall)."""

from __future__ import annotations

import contextlib
import http.server
import io
import sys
import threading
import time
import wave
from typing import Iterator

import numpy as np
import pytest
import soundfile  # (guardd[esphome], which the test extra installs)
from hypothesis import given, settings
from hypothesis import strategies as st

from guardd.homeassistant import fetch as fetchmod
from guardd.homeassistant.fetch import Fetch, NotFetched, WavReader, target
from guardd.homeassistant.said import BadAudio, SoundChunk, SoundEnd, SoundStart, Unplayable


def wav(samples: np.ndarray, rate: int = 16000, channels: int = 1, width: int = 2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out.getvalue()


SOUND = (np.sin(np.arange(4000) * 0.07) * 9000).astype("<i2")


def test_the_address_is_always_the_peers_and_only_http_is_fetched():
    assert target("http://homeassistant.local:8123/api/tts_proxy/a.wav?x=1", "192.168.1.10") == (
        "192.168.1.10", 8123, "/api/tts_proxy/a.wav?x=1", "homeassistant.local:8123")
    assert target("http://10.0.0.5/a.wav", "192.168.1.10")[:2] == ("192.168.1.10", 80)  # never 10.0.0.5
    for url in ("https://192.168.1.10:8123/a.wav", "ftp://192.168.1.10/a.wav", "/api/a.wav", "http://[::1"):
        with pytest.raises(NotFetched):
            target(url, "192.168.1.10")


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(cuts=st.lists(st.integers(1, 300), min_size=1, max_size=40))
def test_a_wav_is_read_whole_however_its_bytes_are_cut(cuts):
    data, out, at = wav(SOUND), [], 0
    reader = WavReader()
    for n in cuts + [len(data)]:
        out += reader.feed(data[at:at + n])
        at += n
    assert out[0] == SoundStart(16000, 2, 1)
    pieces = [m.audio for m in out[1:]]
    assert all(isinstance(m, SoundChunk) and len(m.audio) % 2 == 0 for m in out[1:])
    assert b"".join(pieces) == SOUND.tobytes()


@pytest.mark.parametrize("data, why", [
    (b"ID3\x03\x00" + b"\xff\xfb" * 40, "not a WAV file"),
    (wav(np.zeros(100, np.uint8), width=1), "8-bit samples"),
    (b"RIFF\x00\x00\x00\x00WAVEdata\x10\x00\x00\x00" + b"\x00" * 16, "samples come before their format"),
    (b"RIFF\x00\x00\x00\x00WAVEJUNK\xff\xff\x00\x00", "over 4 KiB"),
])
def test_anything_but_a_wav_of_16_bit_samples_is_refused_before_a_sample(data, why):
    with pytest.raises(NotFetched, match=why):
        WavReader().feed(data)


@contextlib.contextmanager
def server(routes: dict[str, tuple[int, dict[str, str], bytes, float]]) -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            status, headers, body, stall = routes.get(self.path, (404, {}, b"", 0.0))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(stall)
            self.wfile.write(body[len(body) // 2:])

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def fetched(url: str, timeout_s: float = 10.0) -> list:
    got: list = []
    done = threading.Event()

    def offer(meaning) -> bool:
        got.append(meaning)
        if isinstance(meaning, (SoundEnd, BadAudio, Unplayable)):
            done.set()
        return True

    Fetch(url, "127.0.0.1", offer).start()
    assert done.wait(timeout_s), got
    return got


def test_a_sound_comes_whole_then_its_end():
    with server({"/a.wav": (200, {}, wav(SOUND), 0.0)}) as port:
        got = fetched(f"http://elsewhere.invalid:{port}/a.wav")
    assert got[0] == SoundStart(16000, 2, 1) and isinstance(got[-1], SoundEnd)
    assert b"".join(m.audio for m in got if isinstance(m, SoundChunk)) == SOUND.tobytes()


def test_a_redirect_is_not_followed_and_an_error_is_unplayable():
    with server({"/r.wav": (302, {"Location": "http://127.0.0.2/x.wav"}, b"", 0.0)}) as port:
        [redirect] = fetched(f"http://127.0.0.1:{port}/r.wav")
        [missing] = fetched(f"http://127.0.0.1:{port}/none.wav")
    assert isinstance(redirect, Unplayable) and "redirect, not followed" in redirect.reason
    assert isinstance(missing, Unplayable) and "404" in missing.reason


@pytest.mark.parametrize("bound", [5000, 3000])  # past the bound in the second half, or in the first read
def test_a_sound_over_its_bound_or_stalling_is_bad_audio_after_its_start(monkeypatch, bound):
    monkeypatch.setattr(fetchmod, "MAX_BYTES", bound)  # (the first half is 4,022 bytes; both may come in one read)
    monkeypatch.setattr(fetchmod, "READ_S", 0.5)
    with server({"/big.wav": (200, {}, wav(SOUND), 0.0), "/slow.wav": (200, {}, wav(SOUND[:500]), 2.0)}) as port:
        big = fetched(f"http://127.0.0.1:{port}/big.wav")
        slow = fetched(f"http://127.0.0.1:{port}/slow.wav")
    assert isinstance(big[0], SoundStart) and isinstance(big[-1], BadAudio) and f"over {bound} bytes" in big[-1].reason
    assert sum(len(m.audio) for m in big if isinstance(m, SoundChunk)) <= bound - 44  # no sample past the bound
    assert isinstance(slow[0], SoundStart) and isinstance(slow[-1], BadAudio) and "timed out" in slow[-1].reason


# -- compressed sounds: Home Assistant's text-to-speech is MP3 until a voice run asks it for WAV ---

def encoded(samples: np.ndarray, rate: int, format_: str, subtype: str | None = None) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format=format_, subtype=subtype)
    return out.getvalue()


def pcm_of(got: list) -> np.ndarray:
    return np.frombuffer(b"".join(m.audio for m in got if isinstance(m, SoundChunk)), dtype="<i2")


def test_a_flac_sound_is_decoded_whole_and_exact():
    stereo = np.stack([SOUND, SOUND[::-1]], axis=1)
    with server({"/a.flac": (200, {}, encoded(stereo, 22050, "FLAC"), 0.0)}) as port:
        got = fetched(f"http://127.0.0.1:{port}/a.flac")
    assert got[0] == SoundStart(22050, 2, 2) and isinstance(got[-1], SoundEnd)
    assert np.array_equal(pcm_of(got), stereo.reshape(-1))  # interleaved, every frame, in order


def id3_tag() -> bytes:
    """An ID3v2.4 tag as ffmpeg (Home Assistant's converter) begins an MP3 with: sizes in 7 bits a byte."""
    def syncsafe(n: int) -> bytes:
        return bytes((n >> shift) & 0x7F for shift in (21, 14, 7, 0))
    body = b"\x03Lavf61.7.100\x00"
    frame = b"TSSE" + syncsafe(len(body)) + b"\x00\x00" + body
    return b"ID3\x04\x00\x00" + syncsafe(len(frame)) + frame


@pytest.mark.parametrize("id3", [True, False])  # as ffmpeg writes it, and bare frames
def test_an_mp3_sound_is_decoded_to_the_tone_it_carries(id3):
    rate = 24000
    t = np.arange(rate * 2) / rate
    tone = (np.sin(2 * np.pi * 440.0 * t) * 12000).astype("<i2")
    mp3 = (id3_tag() if id3 else b"") + encoded(tone, rate, "MP3")
    with server({"/a": (200, {}, mp3, 0.0)}) as port:
        got = fetched(f"http://127.0.0.1:{port}/a")
    assert got[0] == SoundStart(rate, 2, 1) and isinstance(got[-1], SoundEnd)
    pcm = pcm_of(got).astype(np.float64)
    assert abs(len(pcm) - len(tone)) < rate * 0.1  # two seconds (give or take the codec's padding)
    spectrum = np.abs(np.fft.rfft(pcm))
    assert abs(np.argmax(spectrum) * rate / len(pcm) - 440.0) < 5  # and the 440 Hz it was made of
    assert 0.5 < np.sqrt(np.mean(pcm ** 2)) / np.sqrt(np.mean(tone.astype(np.float64) ** 2)) < 1.5


def test_what_cannot_be_decoded_or_is_too_big_or_too_wide_is_unplayable_before_a_sample(monkeypatch):
    monkeypatch.setattr(fetchmod, "COMPRESSED_BYTES", 4000)
    wide = np.stack([SOUND] * 3, axis=1)
    routes = {"/noise.mp3": (200, {}, b"ID3\x03\x00\x00\x00" + bytes(range(256)) * 8, 0.0),
              "/a.ogg": (200, {}, encoded(SOUND, 16000, "OGG", "VORBIS"), 0.0),  # never handed to the decoder
              "/a.aiff": (200, {}, encoded(SOUND, 16000, "AIFF"), 0.0),
              "/big.flac": (200, {}, encoded(np.random.default_rng(1).integers(-9000, 9000, 16000).astype("<i2"),
                                             16000, "FLAC"), 0.0),
              "/wide.flac": (200, {}, encoded(wide[:800], 16000, "FLAC"), 0.0),
              "/tiny": (200, {}, b"ID", 0.0)}
    with server(routes) as port:
        [noise], [ogg], [aiff], [big], [wide_], [tiny] = (fetched(f"http://127.0.0.1:{port}{path}") for path in routes)
    assert isinstance(noise, Unplayable) and "not a sound guardd can decode" in noise.reason
    assert isinstance(ogg, Unplayable) and "WAV, MP3 or FLAC (it begins b'OggS')" in ogg.reason
    assert isinstance(aiff, Unplayable) and "WAV, MP3 or FLAC (it begins b'FORM')" in aiff.reason
    assert isinstance(big, Unplayable) and "over 4000 bytes" in big.reason  # held whole: refused whole
    assert isinstance(wide_, Unplayable) and "3 channels" in wide_.reason  # before a block of them is made
    assert isinstance(tiny, Unplayable) and "only 2 bytes" in tiny.reason


def test_a_small_file_that_decodes_to_a_long_sound_is_cut_at_the_bound_as_bad_audio():
    hours = encoded(np.zeros(int(fetchmod.MAX_S * 8000) + 8000, "<i2"), 8000, "FLAC")  # silence packs tight
    with server({"/long.flac": (200, {}, hours, 0.0)}) as port:
        got = fetched(f"http://127.0.0.1:{port}/long.flac")
    assert len(hours) < fetchmod.COMPRESSED_BYTES and got[0] == SoundStart(8000, 2, 1)
    assert isinstance(got[-1], BadAudio) and f"over {fetchmod.MAX_S:g} s" in got[-1].reason
    assert len(pcm_of(got)) <= fetchmod.MAX_S * 8000  # not a frame past it was handed on


def test_without_soundfile_a_compressed_sound_is_unplayable_and_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "soundfile", None)  # (an import of it fails)
    with server({"/a.flac": (200, {}, encoded(SOUND, 16000, "FLAC"), 0.0), "/a.wav": (200, {}, wav(SOUND), 0.0)}) as port:
        [refused] = fetched(f"http://127.0.0.1:{port}/a.flac")
        played = fetched(f"http://127.0.0.1:{port}/a.wav")
    assert isinstance(refused, Unplayable) and "pip install 'guardd[esphome]'" in refused.reason
    assert isinstance(played[-1], SoundEnd)  # a WAV needs nothing more
