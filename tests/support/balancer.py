"""What a Kubernetes Service is to the replicas of an API, for processes on loopback: one address
whose connections go to the ready backends in turn. A roll takes a backend out (no new connection
reaches it), waits until the connections it has are over, restarts it and puts it back, as the
endpoints controller and kube-proxy do for a Deployment rolling with maxUnavailable 0.

Loopback only: it listens on 127.0.0.1 and connects to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from types import TracebackType

LOOPBACK = "127.0.0.1"


class Balancer:
    def __init__(self, port: int) -> None:
        self._listener = socket.create_server((LOOPBACK, port))
        self._backends: list[int] = []
        self._active: Counter[int] = Counter()
        self._turn = 0
        self._lock = threading.Condition()
        self._closed = False
        self.refused = 0  # connections that found no ready backend
        threading.Thread(target=self._accept, daemon=True, name=f"balancer-{port}").start()

    def add(self, backend: int) -> None:
        with self._lock:
            self._backends.append(backend)

    def drain(self, backend: int, timeout: float = 60.0) -> None:
        """No new connection to `backend`; returns once the ones it has are over."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._backends.remove(backend)
            while self._active[backend]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"backend {backend} still has {self._active[backend]} connections")
                self._lock.wait(left)

    def _pick(self) -> int | None:
        with self._lock:
            if not self._backends:
                return None
            self._turn += 1
            backend = self._backends[self._turn % len(self._backends)]
            self._active[backend] += 1
            return backend

    def _done(self, backend: int) -> None:
        with self._lock:
            self._active[backend] -= 1
            self._lock.notify_all()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            backend = self._pick()
            if backend is None:
                self.refused += 1
                client.close()
                continue
            threading.Thread(target=self._proxy, args=(client, backend), daemon=True).start()

    def _proxy(self, client: socket.socket, backend: int) -> None:
        try:
            try:
                upstream = socket.create_connection((LOOPBACK, backend), timeout=30)
            except OSError:
                client.close()  # the client sees a reset: a failed call, which the tests count
                return
            upstream.settimeout(None)
            back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            back.start()
            _pump(client, upstream)
            back.join()
            upstream.close()
            client.close()
        finally:
            self._done(backend)

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def __enter__(self) -> Balancer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Bytes from `source` to `sink` until `source` ends, then the end passed on."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass  # the other side went away: the copy in the other direction ends it too
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
