"""The one audio format guardd works in, from the microphone to the kept WAV file: 16 kHz, mono,
16-bit little-endian PCM, in frames of 80 ms (the hop every openWakeWord model was trained on)."""

SAMPLE_RATE = 16000  # hertz
SAMPLE_BYTES = 2  # int16
FRAME_SAMPLES = 1280  # 80 ms
FRAME_BYTES = FRAME_SAMPLES * SAMPLE_BYTES
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
