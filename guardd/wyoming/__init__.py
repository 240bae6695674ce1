"""Home Assistant's Wyoming protocol: the frames (the `wyoming` package's, within bounds), the link, and
the adapter that turns its events into the shared meanings (guardd/homeassistant/)."""
