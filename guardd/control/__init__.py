"""The control socket: the wire protocol, the daemon's server and the clients' side."""
