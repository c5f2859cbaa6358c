"""A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it (an alarm webhook's
receiver), answering with the status the test sets."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """What the server received, and how it answers."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = 200
        self.url = ""
        #: Answer a byte at a time, every 0.1 s, until the caller hangs up (or the server stops).
        self.trickle = False
        #: Answer with the path asked for, as many web frameworks' error pages do.
        self.echo = False
        self.stopped = threading.Event()
        #: Set when a trickled answer ended: the caller hung up, or the server stopped.
        self.trickle_ended = threading.Event()
        #: Set by :meth:`answer_in_groups`.
        self.gather = 0
        self.gather_s = 3.0
        self._gather_from = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)

    def answer_in_groups(self, size: int, wait_s: float = 3.0) -> None:
        """From now on, answer requests in groups of ``size`` that arrive together: each
        waits (up to ``wait_s``) for the rest of its group, and one whose group did not fill
        in time is answered 504."""
        with self._lock:
            self.gather, self.gather_s, self._gather_from = size, wait_s, len(self.bodies)

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.bodies)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with receiver._lock:
                    receiver.bodies.append(body)
                    receiver.paths.append(self.path)
                    receiver._arrived.notify_all()
                    gathered = True
                    if receiver.gather:
                        size, since = receiver.gather, receiver._gather_from
                        group_end = since + -(-(len(receiver.bodies) - since) // size) * size
                        gathered = receiver._arrived.wait_for(
                            lambda: len(receiver.bodies) >= group_end, receiver.gather_s
                        )
                if not gathered:
                    self.send_response(504)
                    self.end_headers()
                    self.wfile.write(b"came alone")
                    return
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/plain")
                if receiver.trickle:  # no length: the body runs until the connection closes
                    self.end_headers()
                    try:
                        while not receiver.stopped.wait(0.1):
                            self.wfile.write(b"x")
                            self.wfile.flush()
                    except OSError:  # the caller hung up
                        self.close_connection = True
                    receiver.trickle_ended.set()
                    return
                self.end_headers()
                if receiver.echo:
                    self.wfile.write(f"Cannot POST {self.path}".encode())
                    return
                self.wfile.write(b"ok" if receiver.status < 400 else b"receiver is down")

            def log_message(self, *_: Any) -> None:  # keep the test output clean
                return

        return Handler


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """A running receiver; ``receiver.url`` is where to POST."""
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver._handler())
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alarms"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.stopped.set()
        server.shutdown()
        server.server_close()
        thread.join()
