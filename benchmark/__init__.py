"""`python -m benchmark`: what guardd costs on this machine. Not part of the installed package."""
