"""onnxruntime, imported the one way guardd allows: with its telemetry switched off first.

onnxruntime 1.29 and later, on Linux, write a device id and an event store (the OS, the Python
and the paths of the program) under ~/.cache/Microsoft/DeveloperTools/.onnxruntime and carry an
uploader to Microsoft's collector; `disable_telemetry_events()` does not stop the files. The
pinned 1.28.0 has none of it, and ORT_DISABLE_TELEMETRY=1, read when onnxruntime initialises,
turns all of it off in the releases that have it, should another one be installed.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

from guardd import memory

TELEMETRY_OFF = {"ORT_DISABLE_TELEMETRY": "1"}


def load() -> ModuleType:
    """The onnxruntime module, its telemetry off before its first import in this process."""
    if "onnxruntime" not in sys.modules:
        os.environ.update(TELEMETRY_OFF)
        # Its import maps some 25 MB of library and runs much of it once: made room for, and
        # handed back after, so that the start's peak is not the sum of everything loaded.
        memory.hand_back()
        import onnxruntime

        memory.hand_back()
    import onnxruntime

    return onnxruntime
