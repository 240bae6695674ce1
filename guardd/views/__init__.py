"""Read-only views of what the speaker did, joined from the audit log and the kept recordings."""
