"""The owner's configuration: its settings, the loader that checks them, and the destinations."""
