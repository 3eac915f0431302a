"""`engram serve --workers N`: N server processes on one port.

uvicorn's own workers share one listening socket, and whichever process is awake accepts every
connection waiting on it. Clients that keep a few connections open (an application's pool, a
proxy) then often all land on one process, which serves them on about one core while the other
processes idle: measured with 8 keep-alive connections on 2 workers, 3 rounds in 8 put all 8 on
one process, at 250-270 new-text searches/s against 330-380 when they were shared out.

On Linux each worker here binds its own socket to the port with SO_REUSEPORT, and the kernel
spreads new connections over the workers' sockets by their addresses, whoever is awake. A
worker that exits is started again (one that fails before serving stops the server, as uvicorn
does); SIGINT or SIGTERM stops them all. Elsewhere, or for port 0, uvicorn's workers serve.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn

from engram.errors import ValidationError

logger = logging.getLogger("engram.server")
APP = "engram.server.app:create_app"
RESTART_PAUSE = 1.0  # seconds between restarts of a worker that keeps exiting
STARTUP_FAILURE = 3  # a worker's exit status when it could not start serving (uvicorn's)


def spread_by_kernel(port: int) -> bool:
    """Whether each worker can have its own socket on the port (Linux's SO_REUSEPORT spreads
    connections over a group's sockets; other systems' does not, or is missing)."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT") and port != 0


def serve(host: str, port: int, workers: int, log_level: str = "warning") -> None:
    """Run `workers` processes serving the app (built from the environment) on host:port;
    `check_free` first."""
    if not spread_by_kernel(port):
        uvicorn.run(APP, factory=True, host=host, port=port, workers=workers,
                    log_level=log_level)  # fmt: skip
        return
    Supervisor(host, port, workers, log_level).run()


def _address(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, address


def check_free(host: str, port: int) -> None:
    """Refuse a port another program holds (a ValidationError). SO_REUSEPORT would let a second
    server of the same user share the port silently (and take half its connections); a plain
    bind fails instead."""
    family, address = _address(host, port)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ValidationError(f"{host}:{port} is in use by another program") from None
            raise ValidationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _worker(host: str, port: int, log_level: str) -> None:  # pragma: no cover (a child)
    family, address = _address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    config = uvicorn.Config(APP, factory=True, host=host, port=port, log_level=log_level)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:  # the app failed to load or its startup failed
        sys.exit(STARTUP_FAILURE)


class Supervisor:
    def __init__(self, host: str, port: int, workers: int, log_level: str) -> None:
        self._args = (host, port, log_level)
        self._count = workers
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self._stop = threading.Event()
        self.failed = False

    def run(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self._stop.set())
        self._processes = [self._start() for _ in range(self._count)]
        started = [time.monotonic()] * self._count
        while not self._stop.wait(0.5):
            for i, process in enumerate(self._processes):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:  # broken app or bind: every restart too
                    logger.error("a server process failed to start; stopping")
                    self.failed = True
                    self._stop.set()
                    break
                logger.warning("server process %s exited (%s); starting another",
                               process.pid, process.exitcode)  # fmt: skip
                if time.monotonic() - started[i] < RESTART_PAUSE:
                    time.sleep(RESTART_PAUSE)
                self._processes[i], started[i] = self._start(), time.monotonic()
        for process in self._processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests under way
        for process in self._processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()
        if self.failed:
            raise SystemExit(STARTUP_FAILURE)

    def _start(self) -> BaseProcess:
        process = self._context.Process(target=_worker, args=self._args, daemon=False)
        process.start()
        return process
