"""guardd: a privacy guard daemon for Raspberry Pi smart speakers."""

__version__ = "0.1.0"
