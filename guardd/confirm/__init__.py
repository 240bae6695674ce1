"""Confirming: every outbound request, from the outbox through the gate's press rules to the sender."""
