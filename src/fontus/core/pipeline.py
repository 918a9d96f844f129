"""``Pipeline``: build a graph of nodes from a config, run it, stop it, watch it.

::

    pipeline = Pipeline.from_file("examples/audio.yaml")
    result = pipeline.run()          # returns when every source ended and all was flushed
    print(result.stats["vad"].p50_ms)

Lifecycle: ``created → warming → running → stopping → done | failed``.
``start()`` warms every node up (in parallel) before any source produces, so
a slow model load never floods inboxes; a warmup failure fails ``start()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .arguments import check_value
from .config import PipelineConfig, load_pipeline, parse_pipeline
from .errors import ConfigError, GraphError, NodeError, PipelineInvalid
from .inbox import InboxClosed, Item
from .message import Message
from .node import Source
from .payloads import ConfigPayload
from .registry import Registry, default_registry
from .remoting import rewrite_remote_nodes
from .runner import NodeRunner
from .stats import NodeStatsSnapshot
from .validate import validate_pipeline

__all__ = ["Pipeline", "PipelineResult"]

log = logging.getLogger(__name__)

#: Leaving a ``with Pipeline(...)`` block drains queued messages for at most this long...
EXIT_DRAIN_S = 30.0
#: ...then aborts, and waits this long for nodes to leave their current ``update``.
EXIT_ABORT_S = 5.0


@dataclass(frozen=True)
class PipelineResult:
    """How a run ended: ``state`` is ``done``, ``stopped``, ``timeout`` or ``failed``."""

    state: str
    elapsed_s: float
    stats: Mapping[str, NodeStatsSnapshot]
    error: NodeError | None = None

    @property
    def ok(self) -> bool:
        return self.state == "done"


class Pipeline:
    """A validated graph of nodes, each on its own thread."""

    def __init__(self, config: PipelineConfig, registry: Registry | None = None) -> None:
        #: The config as written; ``config`` is what runs (remote nodes replaced by Warps).
        self.source_config = config
        config = rewrite_remote_nodes(config)
        self.config = config
        self.registry = registry or default_registry()
        resolved = validate_pipeline(config, self.registry)
        self._runners: dict[str, NodeRunner] = {}
        problems = []
        for item in resolved:
            try:
                node = item.spec.build(dict(item.arguments))
            except Exception as exc:  # noqa: BLE001 - user __init__: reported as a problem
                problems.append(
                    f"node '{item.config.name}': mark '{item.spec.mark}' could not be built: "
                    f"{type(exc).__name__}: {exc}"
                )
                continue
            origins = config.inputs_of(item.config.name)
            self._runners[item.config.name] = NodeRunner(
                self, node, item.config, item.spec.mark, origins
            )
        if problems:
            raise PipelineInvalid(problems, config.source)
        for link in config.links:
            self._runners[link.source].downstream.append(self._runners[link.target])
            self._runners[link.source].ports.append(link.port)
        self._specs = {item.config.name: item.spec for item in resolved}
        self._stop_requested = threading.Event()
        self._finished = threading.Event()
        self._aborted = False
        self._lock = threading.Lock()
        self._alive = 0
        self._error: NodeError | None = None
        self._state = "created"
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._stop_reason = ""

    # -- construction ----------------------------------------------------------
    @classmethod
    def from_file(
        cls, path: str | Path, overrides: Sequence[str] = (), registry: Registry | None = None
    ) -> Pipeline:
        return cls(load_pipeline(path, overrides), registry)

    @classmethod
    def from_dict(
        cls,
        raw: Mapping[str, Any],
        *,
        overrides: Sequence[str] = (),
        base_dir: str | Path | None = None,
        registry: Registry | None = None,
    ) -> Pipeline:
        config = parse_pipeline(raw, source="pipeline", base_dir=base_dir, overrides=overrides)
        return cls(config, registry)

    # -- introspection -----------------------------------------------------------
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def state(self) -> str:
        return self._state

    @property
    def error(self) -> NodeError | None:
        return self._error

    @property
    def nodes(self) -> dict[str, Any]:
        """Node instances by name."""
        return {name: r.node for name, r in self._runners.items()}

    def stats(self) -> dict[str, NodeStatsSnapshot]:
        """A snapshot of every node's counters, in pipeline order."""
        return {name: runner.snapshot() for name, runner in self._runners.items()}

    def progress(self) -> tuple[int, int | None]:
        """``(messages produced by sources, expected total or None)``."""
        done, total = 0, 0
        known = True
        for runner in self._runners.values():
            if runner.is_source:
                done += runner.stats.sent
                assert isinstance(runner.node, Source)
                t = runner.node.total()
                if t is None:
                    known = False
                else:
                    total += t
        return done, (total if known else None)

    @property
    def elapsed_s(self) -> float:
        if self._started_at is None:
            return 0.0
        return (self._ended_at or time.monotonic()) - self._started_at

    # -- running -------------------------------------------------------------
    def start(self) -> None:
        """Warm every node up, then start all node threads; raises NodeError if a warmup fails."""
        with self._lock:
            if self._state != "created":
                raise GraphError(f"pipeline '{self.name}' was already started ({self._state})")
            self._state = "warming"
        runners = list(self._runners.values())
        failures: list[NodeError] = []
        with ThreadPoolExecutor(max_workers=min(8, max(1, len(runners)))) as pool:
            for runner, fut in [(r, pool.submit(r.warmup)) for r in runners]:
                try:
                    fut.result()
                except NodeError as exc:
                    failures.append(exc)
                except Exception as exc:  # noqa: BLE001 - reported as this node's failure
                    failures.append(NodeError(runner.name, f"warmup failed: {exc}"))
        if failures:
            for runner in runners:
                if runner.warmed:
                    try:
                        runner.node.destroy()
                    except Exception:  # noqa: BLE001 - the warmup failure is the error to raise
                        log.warning(
                            "node '%s': destroy() failed after a warmup failure", runner.name
                        )
            self._state = "failed"
            self._error = failures[0]
            self._finished.set()
            if len(failures) > 1:
                # One line per node: a pipeline pointed at a dead server fails every remote node.
                detail = "".join(f"\n  - {f}" for f in failures)
                raise NodeError(
                    failures[0].node, f"warmup failed on several nodes ({len(failures)}):{detail}"
                )
            raise failures[0]
        self._started_at = time.monotonic()
        self._alive = len(runners)
        self._state = "running"
        log.info("pipeline '%s': running %d nodes", self.name, len(runners))
        if not runners:
            self._finish()
        for runner in runners:
            runner.thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every node finished; returns False if ``timeout`` passed first."""
        return self._finished.wait(timeout)

    def run(self, timeout: float | None = None) -> PipelineResult:
        """Start, wait until the sources end and everything is flushed, and report.

        With ``timeout``, a pipeline still running after that many seconds is
        stopped gracefully (queued messages are drained) and reported as ``timeout``.
        """
        self.start()
        if not self.wait(timeout):
            self.stop(reason="timeout")
            self.wait()
        return self.result()

    def result(self) -> PipelineResult:
        if self._error is not None:
            state = "failed"
        elif self._stop_reason:
            state = self._stop_reason
        else:
            state = "done" if self._finished.is_set() else self._state
        return PipelineResult(state, self.elapsed_s, self.stats(), self._error)

    def stop(self, reason: str = "stopped", graceful: bool = True) -> None:
        """Stop the sources; with ``graceful`` (default) queued messages are still processed
        and flushed.  Otherwise inboxes are closed and nodes leave at once."""
        with self._lock:
            if not self._stop_reason and self._state in ("running", "warming", "stopping"):
                self._stop_reason = reason
            if self._state == "running":
                self._state = "stopping"
        self._stop_requested.set()
        if not graceful:
            self._aborted = True
            for runner in self._runners.values():
                runner.inbox.close()

    def configure(self, node: str, prop: str, value: Any) -> None:
        """Send a runtime change to ``node``; it reaches ``set_on_config`` after every message
        queued before it (a :class:`ConfigPayload` ordered with data)."""
        if self._finished.is_set():
            raise GraphError(
                f"pipeline '{self.name}' has ended ({self._state}); cannot configure '{node}'"
            )
        runner = self._runners.get(node)
        if runner is None:
            raise GraphError(
                f"pipeline '{self.name}': no node named '{node}'; nodes are "
                f"{', '.join(self._runners)}"
            )
        spec = self._specs.get(node)
        arg = spec.argument(prop) if spec else None
        if arg is not None:
            ok, value = check_value(value, arg.annotation)
            if not ok:
                raise ConfigError(
                    f"node '{node}': argument '{prop}' must be {arg.type_name}, got {value!r}"
                )
        message = Message(ConfigPayload({prop: value}), creator="pipeline").freeze()
        try:
            runner.inbox.put(Item("pipeline", message, control=True))
        except InboxClosed:
            raise GraphError(
                f"pipeline '{self.name}': node '{node}' has finished its stream (or the "
                "pipeline stopped); a configuration change can no longer reach it"
            ) from None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._state in ("running", "stopping", "warming"):
            self.stop()
            if not self.wait(EXIT_DRAIN_S):
                self.stop(graceful=False)
                self.wait(EXIT_ABORT_S)

    # -- callbacks from runners ---------------------------------------------
    def _node_failed(self, error: NodeError) -> None:
        with self._lock:
            first = self._error is None
            if first:
                self._error = error
        if first:
            # Reported once, by whoever reads the result (the CLI prints it); not logged as an error here.
            log.info("pipeline '%s' stopping: %s", self.name, error)
        self.stop(reason="failed")

    def _node_finished(self, runner: NodeRunner) -> None:
        with self._lock:
            self._alive -= 1
            last = self._alive == 0
        if last:
            self._finish()

    def _finish(self) -> None:
        self._ended_at = time.monotonic()
        self._state = "failed" if self._error else "done"
        log.info("pipeline '%s': %s after %.2fs", self.name, self._state, self.elapsed_s)
        self._finished.set()
