"""Run a server and its clients inside a private network namespace (standard library only).

Juturna's ``remotize`` listens on every interface (``[::]:PORT``), so the live
tests never start it in the machine's own network namespace.  The test starts
this script as the first process of fresh user, network and PID namespaces::

    unshare --user --map-root-user --net --pid --fork --kill-child \\
        python netns.py JOB.json

Being PID 1 of its PID namespace, everything it starts dies with it (and
``--kill-child`` kills it if ``unshare`` is killed, e.g. by a test timeout).
It checks that the only network interface is ``lo`` (so nothing can listen
anywhere else), brings ``lo`` up, starts the server, waits until its port
accepts connections, runs the clients one after another, stops the server and
prints a JSON report on stdout::

    JOB = {"server": {"argv": [...], "cwd": DIR, "env": {...}, "port": 50051,
                      "log": FILE, "start_timeout": 30},
           "clients": [{"name": ..., "argv": [...], "cwd": DIR, "env": {...}, "timeout": 60}]}
    report = {"clients": [{"name", "returncode", "stdout", "stderr", "seconds"}],
              "server_returncode": int | None}

Exit status 0 when the report was printed (whatever the clients did), 3 when
this is not a private network namespace, 4 when the server did not start.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import time
from typing import Any

#: ioctl requests of <linux/sockios.h> and the IFF_UP flag of <net/if.h>.
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
#: How often the server's port is tried while it starts.
POLL_S = 0.05
#: How long the server gets to exit on SIGTERM before it is killed.
STOP_GRACE_S = 5.0


def interfaces() -> list[str]:
    # Asked of the kernel in this network namespace (/sys/class/net would still show
    # the machine's interfaces: sysfs is not remounted here).
    return sorted(name for _, name in socket.if_nameindex())


def bring_lo_up() -> None:
    """``ip link set lo up`` without needing iproute2: set IFF_UP on lo by ioctl."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def environment(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra}


def main() -> int:
    with open(sys.argv[1]) as f:
        job: dict[str, Any] = json.load(f)
    found = interfaces()
    if found != ["lo"]:
        print(f"netns: refusing to run: interfaces {found}, expected only lo", file=sys.stderr)
        return 3
    bring_lo_up()

    spec = job["server"]
    with open(spec["log"], "w") as log:
        return run(job, spec, log)


def run(job: dict[str, Any], spec: dict[str, Any], log: Any) -> int:
    server = subprocess.Popen(
        spec["argv"],
        cwd=spec["cwd"],
        env=environment(spec.get("env", {})),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + spec.get("start_timeout", 30.0)
    while not port_open(spec["port"]):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            print(f"netns: server did not listen on port {spec['port']}", file=sys.stderr)
            return 4
        time.sleep(POLL_S)

    report: dict[str, Any] = {"clients": []}
    try:
        for client in job["clients"]:
            started = time.monotonic()
            try:
                done = subprocess.run(
                    client["argv"],
                    cwd=client["cwd"],
                    env=environment(client.get("env", {})),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=client["timeout"],
                )
                returncode, out, err = done.returncode, done.stdout, done.stderr
            except subprocess.TimeoutExpired as exc:
                returncode = None
                out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
                err = f"timed out after {client['timeout']} s\n" + (
                    exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
                )
            report["clients"].append(
                {
                    "name": client["name"],
                    "returncode": returncode,
                    "stdout": out,
                    "stderr": err,
                    "seconds": time.monotonic() - started,
                }
            )
    finally:
        server.terminate()
        try:
            server.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        report["server_returncode"] = server.returncode
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
