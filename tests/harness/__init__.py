"""The test harness, one place for what the tests stand on:

- processes.py: guardd as the owner and systemd meet it (the CLI, `guardd run` as a Daemon with
  ALSA's file plugin as its microphone and its speaker, and what that speaker heard), configs,
  and the one wait_until;
- device.py: the real pipeline on gpiozero's MockFactory pins on a clock the test moves, and the
  adapters made for tests at seams guardd owns (NoSender, FailingJournal, InstantSpeaker);
- inbox.py: the one destination, a real HTTP server on loopback;
- disk.py: the log's disk with chosen system calls replaced, for the log's own tests.

conftest.py makes the fixtures of them.
"""

from harness.device import (
    ME, T0, TIMEOUT_S, Device, FailingJournal, InstantSpeaker, NoSender, Submitted, WyomingFrames,
)
from harness.disk import LogDisk, patch_log_disk
from harness.inbox import REPLY, Arrival, Inbox
from harness.processes import (
    ASOUNDRC, GUARDD, ROOT, WAIT_S, Daemon, alsa_env, guardd, heard, wait_for_record, wait_until, write_config,
)

__all__ = [
    "ASOUNDRC", "GUARDD", "ME", "REPLY", "ROOT", "T0", "TIMEOUT_S", "WAIT_S", "Arrival", "Daemon", "Device",
    "FailingJournal", "Inbox", "InstantSpeaker", "LogDisk", "NoSender", "Submitted", "alsa_env", "guardd", "heard",
    "patch_log_disk",
    "wait_for_record", "wait_until", "write_config", "WyomingFrames",
]
