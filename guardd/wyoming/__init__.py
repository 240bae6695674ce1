"""Home Assistant's Wyoming protocol: the frames (the `wyoming` package's, within bounds)."""
