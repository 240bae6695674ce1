"""The one audio format guardd works in, from the microphone to the kept WAV file: 16 kHz, mono,
16-bit little-endian PCM, in frames of 80 ms (the hop every openWakeWord model was trained on)."""

import io
import wave

SAMPLE_RATE = 16000  # hertz
SAMPLE_BYTES = 2  # int16
FRAME_SAMPLES = 1280  # 80 ms
FRAME_BYTES = FRAME_SAMPLES * SAMPLE_BYTES
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
PCM_TYPE = f"audio/L16;rate={SAMPLE_RATE};channels=1"  # these samples with no WAV header (RFC 2586)


def wav_pcm(wav: bytes) -> bytes:
    """The samples of a WAV file guardd kept (in this format), without its header."""
    with wave.open(io.BytesIO(wav), "rb") as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (SAMPLE_RATE, SAMPLE_BYTES, 1)
        return w.readframes(w.getnframes())
