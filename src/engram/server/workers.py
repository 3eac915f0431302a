"""`engram serve --workers N`: N server processes on one port.

uvicorn's own workers share one listening socket, and whichever process is awake accepts every
connection waiting on it. Clients that keep a few connections open (an application's pool, a
proxy) then often all land on one process, which serves them on about one core while the other
processes idle: measured with 8 keep-alive connections on 2 workers, 3 rounds in 8 put all 8 on
one process, at 250-270 new-text searches/s against 330-380 when they were shared out.

On Linux each worker here binds its own socket to the port with SO_REUSEPORT, and the kernel
spreads new connections over the workers' sockets by their addresses, whoever is awake. The
supervisor does what uvicorn's does: it starts again a worker that exits or stops answering its
health pings (one that fails before serving stops the server), restarts them all on SIGHUP and
stops them on SIGINT or SIGTERM; a worker whose supervisor is gone stops too. A port another
program holds is refused before anything starts, and a lock file per port keeps two of these
servers from sharing a port (SO_REUSEPORT would let them, silently). Elsewhere uvicorn's workers
serve.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import IO, Any

import uvicorn

from engram.errors import ValidationError

logger = logging.getLogger("engram.server")
APP = "engram.server.app:create_app"
STARTUP_FAILURE = 3  # a worker's exit status when it could not start serving (uvicorn's)
HEALTH_TIMEOUT = 5.0  # seconds a worker has to answer a health ping (uvicorn's default)
RESTART_PAUSES = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # after 0, 1, 2, ... quick deaths
QUICK = 10.0  # a worker that exits within this many seconds of its start died quickly


def spread_by_kernel() -> bool:
    """Whether each worker can have its own socket on the port (Linux's SO_REUSEPORT spreads
    connections over a group's sockets; other systems' does not, or is missing)."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def serve(host: str, port: int, workers: int, log_level: str = "warning") -> None:
    """Run `workers` processes serving the app (built from the environment) on host:port;
    `claim` first."""
    if not spread_by_kernel():
        uvicorn.run(APP, factory=True, host=host, port=port, workers=workers,
                    log_level=log_level)  # fmt: skip
        return
    Supervisor(host, port, workers, log_level).run()


def claim(host: str, port: int) -> IO[bytes] | None:
    """Make sure the port is this server's, before anything starts (a ValidationError if not);
    the returned lock file keeps it so while it is open. A plain bind tells whether another
    program listens there; the lock, whether another of these servers is starting on it."""
    if not spread_by_kernel():
        return None
    lock = open(_lock_path(port), "ab")  # noqa: SIM115 (held for the server's lifetime)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise ValidationError(f"port {port} is in use by another engram server") from None
    family, address = _address(host, port)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            lock.close()
            if exc.errno == errno.EADDRINUSE:
                raise ValidationError(f"{host}:{port} is in use by another program") from None
            raise ValidationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return lock


def _lock_path(port: int) -> Path:
    folder = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(folder) / f"engram-serve-{os.getuid()}-{port}.lock"


def _address(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, address


def _worker(host: str, port: int, log_level: str, health: Connection) -> None:  # pragma: no cover
    """A worker process: its own socket on the port, uvicorn serving the app on it."""
    family, address = _address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    server = uvicorn.Server(uvicorn.Config(APP, factory=True, host=host, port=port,
                                           log_level=log_level))  # fmt: skip
    threading.Thread(target=_answer_pings, args=(health,), daemon=True).start()
    threading.Thread(target=_stop_when_orphaned, args=(server,), daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the supervisor stops
        pass
    except Exception:
        if server.started:
            raise
        logger.exception("the server process could not start")
        sys.exit(STARTUP_FAILURE)
    if not server.started and not server.should_exit:  # the app's startup failed
        sys.exit(STARTUP_FAILURE)


def _answer_pings(health: Connection) -> None:  # pragma: no cover (a worker's thread)
    try:
        while True:
            health.recv()
            health.send(True)
    except (EOFError, OSError):  # the supervisor is gone
        pass


def _stop_when_orphaned(server: uvicorn.Server) -> None:  # pragma: no cover (a worker's thread)
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    wait([parent.sentinel])
    server.should_exit = True  # finishes the requests under way, then exits


class Worker:
    def __init__(self, context: Any, args: tuple[str, int, str]) -> None:
        self.health, theirs = context.Pipe()
        self.process: BaseProcess = context.Process(target=_worker, args=(*args, theirs))
        self.process.start()
        theirs.close()
        self.started = time.monotonic()

    def healthy(self) -> bool:
        """Whether it runs and answers a ping within HEALTH_TIMEOUT."""
        if not self.process.is_alive():
            return False
        try:
            self.health.send(True)
            if self.health.poll(HEALTH_TIMEOUT):
                self.health.recv()
                return True
        except (EOFError, OSError):
            pass
        return False

    def stop(self, timeout: float = 30.0) -> None:
        if self.process.is_alive():
            self.process.terminate()  # SIGTERM: uvicorn finishes the requests under way
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.health.close()


class Supervisor:
    def __init__(self, host: str, port: int, workers: int, log_level: str) -> None:
        self._args = (host, port, log_level)
        self._count = workers
        self._context = multiprocessing.get_context("spawn")
        self._signals: list[int] = []
        self._stop = threading.Event()

    def run(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        workers = [Worker(self._context, self._args) for _ in range(self._count)]
        quick_deaths = [0] * self._count
        due: list[float | None] = [None] * self._count  # when a dead worker is started again
        failed = False
        while not self._stop.wait(0.5):
            if signal.SIGHUP in self._signals:  # restart them all, one at a time
                self._signals.clear()
                for i, worker in enumerate(workers):
                    worker.stop()
                    workers[i], due[i] = Worker(self._context, self._args), None
            for i, worker in enumerate(workers):
                when = due[i]
                if when is not None:
                    if time.monotonic() >= when:
                        workers[i], due[i] = Worker(self._context, self._args), None
                    continue
                if worker.healthy() or self._stop.is_set():
                    continue
                worker.stop(timeout=5)
                if worker.process.exitcode == STARTUP_FAILURE:  # would fail again: stop
                    logger.error("a server process failed to start; stopping")
                    failed = True
                    self._stop.set()
                    break
                quick = time.monotonic() - worker.started < QUICK
                quick_deaths[i] = quick_deaths[i] + 1 if quick else 0
                pause = RESTART_PAUSES[min(quick_deaths[i], len(RESTART_PAUSES) - 1)]
                logger.warning("server process %s stopped (%s); starting another in %.0f s",
                               worker.process.pid, worker.process.exitcode, pause)  # fmt: skip
                due[i] = time.monotonic() + pause
        for worker in workers:
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in workers:
            worker.stop()
        if failed:
            raise SystemExit(STARTUP_FAILURE)

    def _on_signal(self, sig: int, _frame: object) -> None:
        if sig == signal.SIGHUP:
            self._signals.append(sig)
        else:
            self._stop.set()
