"""The log's disk: the real one with chosen system calls replaced."""

from __future__ import annotations

import os
from typing import Any, Callable

from guardd.auditlog import files as log_files


class LogDisk:
    """The log writer's view of the os module (guardd.auditlog.files.os) with the calls given
    replaced; every other call is the real one. For the log's own durability tests: everything
    above the log uses a journal made for the test instead."""

    def __init__(self, **calls: Callable[..., Any]) -> None:
        self.__dict__.update(calls)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def patch_log_disk(monkeypatch: Any, disk: Any = None, **calls: Callable[..., Any]) -> Any:
    disk = disk if disk is not None else LogDisk(**calls)
    monkeypatch.setattr(log_files, "os", disk)
    return disk
