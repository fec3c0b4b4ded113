"""A tiny HTTP echo server: the lab's pods, kubelet and kube-apiserver stand-ins.

It answers every path with JSON saying who answered and whom it saw as the client, which is
what tests and rules need to tell where a NodePort landed and whether the source IP was
kept (externalTrafficPolicy: Local). `/healthz` answers "ok". It imports nothing from this
package so it starts fast when run as a script in a namespace:
    ip netns exec <ns> python3 .../echo.py --name echo-node-1 --node node-1 --port 8080
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(name: str, node: str, role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "netdoctor-echo/1"
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] == "/healthz":
                body, ctype = b"ok\n", "text/plain"
            else:
                client_ip, client_port = self.client_address[:2]
                local_ip, local_port = self.connection.getsockname()[:2]
                body = json.dumps({"pod": name, "node": node, "role": role, "path": self.path,
                                   "client": f"{client_ip}:{client_port}", "clientIP": client_ip,
                                   "server": f"{local_ip}:{local_port}",
                                   "host": self.headers.get("Host")}).encode() + b"\n"
                ctype = "application/json"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: object) -> None:
            sys.stderr.write(f"{self.client_address[0]} {fmt % args}\n")

    return Handler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--node", default="")
    ap.add_argument("--role", default="pod")
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, action="append", required=True)
    args = ap.parse_args(argv)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    handler = make_handler(args.name, args.node, args.role)
    servers = [ThreadingHTTPServer((args.bind, port), handler) for port in args.port]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for srv in servers:
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()
    sys.stderr.write(f"echo {args.name} listening on {args.bind}:{','.join(map(str, args.port))}\n")
    sys.stderr.flush()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
