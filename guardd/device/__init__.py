"""The device around the core: the LED and button panel, the mute state, systemd's notify socket."""
