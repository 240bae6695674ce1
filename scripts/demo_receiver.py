"""A stand-in destination for the demo: an HTTP server on loopback that prints what arrives.

Usage: python scripts/demo_receiver.py PORTFILE  (a free port, written to PORTFILE; scripts/demo.sh)
       python scripts/demo_receiver.py PORT      (that port: 8700 is config/laptop.yaml's destination)
Serves until killed.
"""

from __future__ import annotations

import hashlib
import http.server
import sys
from pathlib import Path


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        print(
            f"[receiver] got {len(body)} bytes ({self.headers.get('Content-Type')}), "
            f"sha256 {hashlib.sha256(body).hexdigest()[:16]}…",
            flush=True,
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"text": "message sent to the kitchen speaker"}')

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    where = sys.argv[1]
    server = http.server.HTTPServer(("127.0.0.1", int(where) if where.isdigit() else 0), Handler)
    if where.isdigit():
        print(f"[receiver] listening on http://127.0.0.1:{server.server_port}/", flush=True)
    else:
        Path(where).write_text(str(server.server_port))
    server.serve_forever()
