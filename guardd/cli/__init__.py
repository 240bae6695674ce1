"""The `guardd` command: its parser, `run` (the daemon), `replay`, `doctor` and the owner's commands."""
