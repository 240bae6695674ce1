"""Listening: the microphone, the wake word, the end of an utterance, and the recordings kept after a wake."""
