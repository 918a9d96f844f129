"""Support of the interop tests: a Python 3.12 venv with the real ``juturna[warp]==2.1.1``.

The venv's interpreter is ``$FONTUS_JUTURNA_PYTHON`` when set; otherwise
``scripts/juturna_venv.sh`` creates ``.venv-juturna`` (or confirms it is up to
date) once per session.  Without Python 3.12 and without that venv, every
interop test is reported as skipped with the reason; never passed silently.

``run_juturna(args, stdin)`` runs that interpreter with the repo's ``src`` on
``PYTHONPATH`` (Fontus is importable there, not installed) and returns stdout.

``private_netns`` is the command prefix that runs a program in fresh user,
network and PID namespaces (``unshare``), for servers that listen on every
interface (Juturna's ``remotize``); the tests needing it are skipped, with the
reason, where namespaces are not permitted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_SCRIPT = ROOT / "scripts" / "juturna_venv.sh"
DEFAULT_PYTHON = ROOT / ".venv-juturna" / "bin" / "python"
#: The script's exit status when no Python 3.12 exists on this machine.
NO_PYTHON312 = 3
#: Creating the venv installs juturna[warp] and its dependencies from the package index:
#: about half a minute on a warm cache, a few minutes on a cold one.
VENV_TIMEOUT_S = 480
#: One helper run starts Python 3.12 and imports Juturna, numpy and protobuf: about a second.
RUN_TIMEOUT_S = 60
#: Per-test bound for interop tests; the first one may also wait for the venv to be created.
INTEROP_TEST_TIMEOUT_S = VENV_TIMEOUT_S + 2 * RUN_TIMEOUT_S

#: Creating namespaces and running ``true`` in them takes milliseconds.
NETNS_PROBE_TIMEOUT_S = 10
#: The namespaces a test server that listens on all interfaces runs in: a user namespace
#: (root inside, so no privileges are needed outside), a network namespace with only lo,
#: and a PID namespace so that everything started inside dies with its first process;
#: --kill-child kills that process if unshare itself is killed (a test timeout).
NETNS_PREFIX = ("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child")

RunJuturna = Callable[..., str]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("interop") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(INTEROP_TEST_TIMEOUT_S))


@pytest.fixture(scope="session")
def juturna_python() -> str:
    """Path of the Python 3.12 interpreter that has juturna[warp]==2.1.1 installed."""
    explicit = os.environ.get("FONTUS_JUTURNA_PYTHON")
    if explicit:
        if not os.access(explicit, os.X_OK):
            pytest.fail(f"FONTUS_JUTURNA_PYTHON={explicit!r} is not an executable interpreter")
        return explicit
    try:
        done = subprocess.run(
            ["bash", str(VENV_SCRIPT)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=VENV_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"scripts/juturna_venv.sh did not finish within {VENV_TIMEOUT_S} s")
    if done.returncode == 0:
        return done.stdout.strip().splitlines()[-1]
    if done.returncode == NO_PYTHON312:
        if DEFAULT_PYTHON.exists():
            return str(DEFAULT_PYTHON)  # made earlier; Python 3.12 has gone since
        reason = " ".join(done.stderr.split())
        pytest.skip(f"interop tests need Juturna in Python 3.12: {reason}")
    pytest.fail(f"scripts/juturna_venv.sh failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


@pytest.fixture(scope="session")
def run_juturna(juturna_python: str, tmp_path_factory: pytest.TempPathFactory) -> RunJuturna:
    """``run_juturna(args, stdin=None)``: run the Juturna venv's Python; stdout, or the test fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave no 3.12 caches in the source tree
    workdir = tmp_path_factory.mktemp("juturna")

    def run(
        args: list[str],
        stdin: str | None = None,
        *,
        cwd: str | Path | None = None,
        timeout: float = RUN_TIMEOUT_S,
    ) -> str:
        try:
            done = subprocess.run(
                [juturna_python, *args],
                cwd=cwd or workdir,
                env=env,
                input=stdin if stdin is not None else "",
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"Juturna-side run {args} did not finish within {timeout} s")
        if done.returncode != 0:
            pytest.fail(f"Juturna-side run {args} failed (exit {done.returncode}):\n{done.stderr}")
        return done.stdout

    return run


@pytest.fixture(scope="session")
def private_netns() -> list[str]:
    """The ``unshare`` command prefix for a private network namespace; skips if not permitted."""
    if shutil.which(NETNS_PREFIX[0]) is None:
        pytest.skip("live Juturna server tests need 'unshare' (util-linux) for a private network")
    try:
        done = subprocess.run(
            [*NETNS_PREFIX, "true"],
            capture_output=True,
            text=True,
            timeout=NETNS_PROBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"creating namespaces did not finish within {NETNS_PROBE_TIMEOUT_S} s")
    if done.returncode != 0:
        pytest.skip(
            "live Juturna server tests need user and network namespaces (Juturna listens on all "
            f"interfaces, so it only runs in a private network): {done.stderr.strip()}"
        )
    return list(NETNS_PREFIX)
