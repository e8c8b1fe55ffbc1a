"""A loopback TCP proxy for fault tests: put it between the server and
SeaweedFS and make the store slow, silent or unreachable on demand.

    px = TcpProxy(upstream_port).start()      # listens on 127.0.0.1:px.port
    px.set_mode("delay", seconds=3)            # answers arrive 3 s late
    px.set_mode("delay", seconds=3, match=b"/manifests/")  # only on connections
                                               # whose requests contain the bytes
    px.set_mode("blackhole")                   # nothing passes, connections stay open
    px.set_mode("blackhole", match=b"uploadId=")  # only requests naming an upload
    px.set_mode("reset")                       # every connection is reset (RST)
    px.set_mode("pass")
    px.stop()
    px.matched_requests                        # reads of requests containing match
                                               # since the last set_mode (with delay:
                                               # a request reached the store)

Modes apply at once, to open connections too (a pooled keep-alive
connection does not escape them):
  pass       bytes flow both ways.
  delay      bytes from the store are held `seconds` before they are sent on
             (requests still reach the store at once, so a write can land
             while its answer is late).  With match, only on a connection
             once a request on it contained those bytes (requests are plain
             HTTP), e.g. the manifest commit and not the segment before it.
  blackhole  bytes in either direction are dropped; connections stay open.
             With match, only on a connection once a request on it
             contained those bytes (that request is dropped too), e.g.
             the parts of a multipart upload and not its creation.
  reset      open connections are reset; new ones are accepted and reset.

One thread accepts, one thread per connection pumps; everything is on
127.0.0.1 and every wait is bounded, so stop() always returns.
"""
from __future__ import annotations

import select
import socket
import struct
import threading
import time

MODES = ("pass", "delay", "blackhole", "reset")


def _reset(sock: socket.socket):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class TcpProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.mode = "pass"
        self.delay = 0.0
        self.match: bytes | None = None
        self.accepted = 0
        self.matched_requests = 0  # request reads containing match since the last set_mode
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._generation = 0  # bumped by set_mode("reset"): open pumps reset themselves

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "TcpProxy":
        t = threading.Thread(target=self._accept_loop, name="tcp-proxy-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def set_mode(self, mode: str, seconds: float = 0.0, match: bytes | None = None):
        assert mode in MODES, mode
        with self._lock:
            self.mode = mode
            self.delay = seconds
            self.match = match
            self.matched_requests = 0
            if mode == "reset":
                self._generation += 1

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(10)
        self.lsock.close()

    # -- internals --------------------------------------------------------
    def _accept_loop(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.lsock], [], [], 0.05)
            if not r:
                continue
            try:
                client, _ = self.lsock.accept()
            except OSError:
                continue
            with self._lock:
                self.accepted += 1
                mode = self.mode
            if mode == "reset":
                _reset(client)
                continue
            t = threading.Thread(target=self._pump, args=(client,), name="tcp-proxy-pump",
                                 daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, client: socket.socket):
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _reset(client)
            return
        with self._lock:
            gen = self._generation
        held: list[tuple[float, bytes]] = []  # (due time, bytes) from upstream
        matched = False  # a request on this connection contained self.match
        socks = [client, upstream]
        try:
            while not self._stop.is_set():
                with self._lock:
                    mode, delay, match, cur_gen = self.mode, self.delay, self.match, self._generation
                if cur_gen != gen:
                    break  # reset requested: RST both sides below
                wait = 0.05
                if held:
                    wait = max(0.0, min(wait, held[0][0] - time.monotonic()))
                r, _, _ = select.select(socks, [], [], wait)
                with self._lock:  # a mode set while select waited applies to what it found
                    mode, delay, match = self.mode, self.delay, self.match
                now = time.monotonic()
                while held and (held[0][0] <= now or mode == "pass"):
                    client.sendall(held.pop(0)[1])
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        if s is upstream and held:  # deliver what is due first
                            for due, chunk in held:
                                time.sleep(max(0.0, due - time.monotonic()))
                                client.sendall(chunk)
                        return
                    if s is client:
                        if match is not None and match in data:
                            matched = True
                            with self._lock:
                                self.matched_requests += 1
                    if mode == "blackhole" and (match is None or matched):
                        continue
                    if s is client:
                        upstream.sendall(data)
                    elif mode == "delay" and (match is None or matched):
                        held.append((now + delay, data))
                    else:
                        client.sendall(data)
        except OSError:
            pass
        finally:
            _reset(client)
            _reset(upstream)
