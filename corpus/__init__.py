"""The evaluation audio that the tests and the benchmark share: generated speech and real recordings, cached."""
