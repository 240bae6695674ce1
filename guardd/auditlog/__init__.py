"""The audit log: its format, the one writer, the forward-secure seals, the verifier and the reader."""
