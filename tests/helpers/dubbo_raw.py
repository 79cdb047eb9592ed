"""A blocking Dubbo2 socket for tests that need to see the exact frames a server sends."""

from __future__ import annotations

import socket
import ssl
import time

from tribridge.codecs.dubbo import Frame, FrameDecoder


class RawDubbo:
    def __init__(
        self, host: str, port: int, timeout: float = 5.0, tls: ssl.SSLContext | None = None
    ) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        self.sock = tls.wrap_socket(sock, server_hostname="tribridge-relay") if tls else sock
        self.decoder = FrameDecoder()
        self.frames: list[Frame] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout: float = 5.0) -> Frame:
        """The next frame; raises TimeoutError, or ConnectionError when the peer closed."""
        deadline = time.monotonic() + timeout
        while not self.frames:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError("no frame") from None
            if not data:
                raise ConnectionError("closed by peer")
            self.frames.extend(self.decoder.feed(data))
        return self.frames.pop(0)

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        try:
            while True:
                self.recv(timeout)
        except ConnectionError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()
