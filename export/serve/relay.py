"""A loopback relay that injects the network's faults between a device and the service (tests,
``make bench-offload``): a reply that never comes, a connection that dies mid-request, a 5xx.

Modes: ``forward`` (pass bytes both ways), ``hold`` (read the request, never answer: the
device's deadline fires), ``close`` (read the request, then drop the connection: what a service
killed mid-request looks like), ``error`` (read the request, answer ``503``).
"""

from __future__ import annotations

import contextlib
import socket
import threading

MODES = ("forward", "hold", "close", "error")
UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: 32\r\nConnection: close\r\n\r\n"
    b'{"error": "service unavailable"}'
)


class Relay:
    """Listens on 127.0.0.1 (a free port); :attr:`url` is what the device is pointed at.

    Example:
      >>> with Relay(("127.0.0.1", 8443), mode="hold") as relay:
      ...     device.enroll(..., offload=Offload(relay.url, ...))   # falls back on the deadline
    """

    def __init__(self, upstream: tuple[str, int], mode: str = "forward") -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}.")
        self.upstream, self.mode = upstream, mode
        self.requests = 0  # connections that sent bytes
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> Relay:
        self._listener.settimeout(0.1)
        thread = threading.Thread(target=self._accept, name="relay", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.1)
            if self.mode == "forward":
                self._forward(conn)
                return
            first = self._recv(conn)
            if first:
                self.requests += 1
            if self.mode == "error":
                with contextlib.suppress(OSError):
                    conn.sendall(UNAVAILABLE)
            elif self.mode == "hold":
                while not self._stop.is_set() and self._recv(conn) is not None:
                    pass
            # "close": drop it

    def _recv(self, conn: socket.socket) -> bytes | None:
        """Bytes, b'' on a timeout, None when the peer closed."""
        try:
            data = conn.recv(1 << 16)
        except TimeoutError:
            return b""
        except OSError:
            return None
        return data or None

    def _forward(self, conn: socket.socket) -> None:
        with socket.create_connection(self.upstream, timeout=5) as up:
            up.settimeout(0.1)
            self.requests += 1
            while not self._stop.is_set():
                for src, dst in ((conn, up), (up, conn)):
                    data = self._recv(src)
                    if data is None:
                        return
                    if data:
                        dst.sendall(data)
