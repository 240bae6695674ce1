"""The one exception tree guardd raises. Each class also inherits the matching builtin, so a
caller may catch either (`except ConfigError` or `except ValueError`)."""

from __future__ import annotations


class GuarddError(Exception):
    """Base of every error guardd raises on purpose; its message is meant for the owner."""


class ConfigError(GuarddError, ValueError):
    """The config file is unreadable or invalid. `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ModelError(GuarddError, RuntimeError):
    """A wake word model is missing, malformed or cannot be loaded."""


class AudioError(GuarddError, OSError):
    """The audio input cannot be opened, or the audio file cannot be read."""


class PanelError(GuarddError, RuntimeError):
    """The LED or button cannot be set up on the configured pins."""


class AuditLogError(GuarddError, OSError):
    """The audit log cannot be written or read. Anything waiting on a log write fails closed."""


class LogIntegrityError(AuditLogError):
    """The audit log on disk does not verify: it was damaged or tampered with."""


class KeyStateError(GuarddError, ValueError):
    """The log's sealing key state is missing, malformed or does not belong to this log."""


class Refused(GuarddError):
    """A send request that cannot even be queued: unknown destination, too large, busy, log down.
    `code` is the refusal's name on the control socket and in the `refused` record."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class BadRequest(GuarddError, ValueError):
    """A control-socket message that is not a valid call; the connection is answered and closed."""
