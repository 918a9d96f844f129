"""``fontus run PIPELINE``: run a pipeline until its sources end, with a live view and a summary."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable

from rich.console import Console
from rich.live import Live

from ..core import Pipeline, PipelineResult
from . import _render
from ._command import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    Command,
    CommandFailed,
    add_overrides_option,
    positive_seconds,
)
from ._signals import StopSignals

__all__ = ["COMMAND"]

#: The run loop's period: the live view refreshes about 4 times a second, and a signal
#: or the --timeout is acted on within this delay.
REFRESH_S = 0.25
#: After an abort (second Ctrl-C), how long node threads get to leave before the command
#: exits anyway; they are daemon threads, so a node stuck in update() cannot hold the exit.
ABORT_WAIT_S = 5.0


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", metavar="PIPELINE", help="pipeline file (YAML or JSON)")
    add_overrides_option(parser)
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="S",
        help="stop gracefully after S seconds if the sources have not ended (exit 1)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no live view and no final summary"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        metavar="P",
        help="expose Prometheus metrics of the running pipeline on http://127.0.0.1:P/metrics",
    )


class _Supervisor:
    """Starts the pipeline and supervises it from the main thread until it finishes."""

    def __init__(
        self, pipeline: Pipeline, timeout: float | None, signals: StopSignals, quiet: bool
    ) -> None:
        self.pipeline = pipeline
        self.timeout = timeout
        self.signals = signals
        self.quiet = quiet
        self._start_error: BaseException | None = None
        self._handled_signals = 0
        self._abort_at: float | None = None

    def _start(self) -> None:
        # On a thread, so that signals and --timeout are handled during a long warmup too.
        try:
            self.pipeline.start()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            self._start_error = exc

    def run(self, refresh: Callable[[], None]) -> PipelineResult:
        starter = threading.Thread(target=self._start, name="fontus-cli-start", daemon=True)
        began = time.monotonic()
        starter.start()
        timed_out = False
        while True:
            finished = self.pipeline.wait(REFRESH_S)
            if not starter.is_alive() and (finished or self._start_error is not None):
                break
            now = time.monotonic()
            self._on_signals(now)
            if not timed_out and self.timeout is not None and now - began >= self.timeout:
                timed_out = True
                self.pipeline.stop(reason="timeout")
            if self._abort_at is not None and now - self._abort_at >= ABORT_WAIT_S:
                break
            refresh()
        starter.join(timeout=0)
        if self._start_error is not None:
            raise self._start_error
        return self.pipeline.result()

    def _on_signals(self, now: float) -> None:
        count = self.signals.count
        if count <= self._handled_signals:
            return
        if self._handled_signals == 0:
            self._say(
                f"{self.signals.last} received: stopping the sources and draining what is "
                "queued; press Ctrl-C again to abort"
            )
            self.pipeline.stop(reason="stopped")
        if count >= 2 and self._abort_at is None:
            self._say("aborting: queued messages are dropped")
            self.pipeline.stop(reason="stopped", graceful=False)
            self._abort_at = now
        self._handled_signals = count

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"fontus: {text}", file=sys.stderr, flush=True)


def _live_refresh(live: Live, pipeline: Pipeline, console: Console) -> Callable[[], None]:
    def refresh() -> None:
        view = _render.live_view(
            pipeline.name,
            pipeline.state,
            pipeline.stats(),
            pipeline.progress(),
            pipeline.elapsed_s,
            console,
        )
        live.update(view, refresh=True)

    return refresh


def _run(args: argparse.Namespace) -> int:
    pipeline = Pipeline.from_file(args.pipeline, args.overrides)
    if not args.metrics_port:
        return _run_pipeline(args, pipeline)
    from ..metrics import serve_pipeline_metrics  # prometheus-client is optional

    endpoint = serve_pipeline_metrics(pipeline, args.metrics_port)
    if not args.quiet:
        print(f"fontus: metrics on {endpoint.url}", file=sys.stderr, flush=True)
    with endpoint:
        return _run_pipeline(args, pipeline)


def _run_pipeline(args: argparse.Namespace, pipeline: Pipeline) -> int:
    console = _render.make_console()
    show_live = console.is_terminal and not args.quiet
    with StopSignals() as signals:
        supervisor = _Supervisor(pipeline, args.timeout, signals, args.quiet)
        if show_live:
            with Live(console=console, auto_refresh=False, transient=True) as live:
                refresh = _live_refresh(live, pipeline, console)
                refresh()
                result = supervisor.run(refresh)
        else:
            result = supervisor.run(lambda: None)
    if not args.quiet:
        console.print(_render.summary(pipeline.name, result, console))
    if result.state == "failed":
        detail = str(result.error) if result.error else f"pipeline '{pipeline.name}' failed"
        raise CommandFailed(detail)
    if result.state == "timeout":
        raise CommandFailed(f"stopped after --timeout {args.timeout:g} s before the sources ended")
    if result.state == "stopped":
        return EXIT_INTERRUPTED
    return EXIT_OK


COMMAND = Command(
    name="run",
    help="run a pipeline until its sources end",
    description=(
        "Run PIPELINE until every source has ended and everything is flushed. "
        "Ctrl-C or SIGTERM stops the sources and drains what is queued; a second "
        "Ctrl-C aborts. On a terminal a live per-node table is shown; a summary "
        "is printed at the end (unless --quiet)."
    ),
    configure=_configure,
    handler=_run,
)
