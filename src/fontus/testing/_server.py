"""``LoopbackServer``: a real ``fontus serve`` process on 127.0.0.1, for tests and demos."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

__all__ = ["LoopbackServer"]

#: Starting Python, importing grpc and binding takes ~1 s; 30 s covers a loaded CI machine.
START_TIMEOUT_S = 30.0
_LISTENING = re.compile(r"listening on (\S+):(\d+)")


class LoopbackServer:
    """Runs ``fontus serve --host 127.0.0.1 --port 0 ARGS...`` and knows its address.

    ::

        with LoopbackServer(["--allow", "identity,gain"]) as server:
            ... "remote": server.target ...
    """

    def __init__(
        self,
        args: Sequence[str] = ("--allow", "identity"),
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        launcher: Sequence[str] = (),
    ) -> None:
        self.args = list(args)
        #: What runs the ``fontus`` command line (``serve ...`` is appended); by default
        #: ``python -m fontus``.  A benchmark may run it under a profiler this way.
        self.launcher = list(launcher) or [sys.executable, "-m", "fontus"]
        self.env = env
        self.host = host
        self.requested_port = port
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self.output: deque[str] = deque(maxlen=2000)
        self._reader: threading.Thread | None = None
        self._listening = threading.Event()

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = START_TIMEOUT_S) -> LoopbackServer:
        command = [
            *self.launcher,
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.requested_port),
            *self.args,
        ]
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self._reader = threading.Thread(
            target=self._read, name="fontus-loopback-server-output", daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.05):
            if self.process.poll() is not None:
                self._reader.join(2.0)
                raise RuntimeError(
                    f"fontus serve exited with code {self.process.returncode} before listening:\n"
                    + self.log()
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"fontus serve did not listen within {timeout:.0f}s:\n" + self.log()
                )
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match and not self._listening.is_set():
                self.port = int(match.group(2))
                self._listening.set()

    def log(self) -> str:
        return "\n".join(self.output)

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful drain), then wait; SIGKILL if it does not exit in ``timeout``."""
        if self.process is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
