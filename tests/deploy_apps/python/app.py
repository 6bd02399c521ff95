"""A one-file web app: answers its version, the instance's name and one dependency's work."""

import http.server
import os
import pathlib
import socket

import humanize  # the one dependency, installed into the release on the host

VERSION = pathlib.Path(__file__).with_name("version.txt").read_text().strip()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/health":
            body = b"ok\n"
        else:
            secret = "set" if os.environ.get("SECRET_TOKEN") else "unset"
            body = (f"hello {VERSION} from {socket.gethostname()} "
                    f"({humanize.naturalsize(123456789)}, secret {secret}, "
                    f"greeting {os.environ.get('GREETING', '-')})\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # health checkers may close with a reset: nothing to report


if os.environ.get("CRASH"):
    raise SystemExit(f"refusing to start: {os.environ['CRASH']}")
print(f"listening on {os.environ['PORT']} ({VERSION})", flush=True)
Server(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
