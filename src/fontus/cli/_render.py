"""Rich renderables for the command: the per-node stats table, progress, summary, mark lists.

On a terminal they are coloured; otherwise plain ASCII with no escape codes,
so that logs and pipes stay readable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..core import NodeSpec, NodeStatsSnapshot, PipelineResult

__all__ = [
    "STATS_COLUMNS",
    "live_view",
    "make_console",
    "mark_table",
    "marks_table",
    "stats_table",
    "summary",
]

#: Width used when writing to a pipe or a file (unless COLUMNS is larger): wide enough
#: that the stats table (eleven columns) is never folded.
PLAIN_WIDTH = 160

STATS_COLUMNS = (
    "node",
    "mark",
    "kind",
    "received",
    "sent",
    "rate msg/s",
    "queue",
    "p50 ms",
    "p99 ms",
    "errors",
    "dropped",
)

_STATE_STYLE = {
    "done": "bold green",
    "running": "cyan",
    "stopped": "yellow",
    "timeout": "yellow",
    "failed": "bold red",
    "aborted": "bold red",
}


def make_console(stream: TextIO | None = None) -> Console:
    """A console on ``stream`` (stdout by default): coloured only on a terminal."""
    stream = stream or sys.stdout
    tty = stream.isatty()
    width = None
    if not tty:
        # Folded or truncated columns would make piped output hard to read and to parse.
        columns = os.environ.get("COLUMNS", "")
        width = max(PLAIN_WIDTH, int(columns) if columns.isdigit() else 0)
    return Console(
        file=stream,
        force_terminal=tty,
        color_system="auto" if tty else None,
        highlight=False,
        width=width,
        soft_wrap=False,
    )


#: Like ``box.SIMPLE`` (a rule under the header, no borders) in plain ASCII.
_PLAIN_BOX = box.Box("    \n    \n -- \n    \n    \n -- \n    \n    \n", ascii=True)


def _box(console: Console) -> box.Box:
    return box.SIMPLE_HEAD if console.is_terminal else _PLAIN_BOX


#: Longer node names are shortened in tables (a remote group of many nodes is named
#: after all of them): rich would otherwise squeeze every other column to "…".
NAME_WIDTH = 32


def display_name(name: str) -> str:
    """``name``, or a short form of it that keeps its ends: ``g0+…+g19 (20 nodes)``."""
    if len(name) <= NAME_WIDTH:
        return name
    members = name.split("+")
    if len(members) > 2:
        short = f"{members[0]}+…+{members[-1]} ({len(members)} nodes)"
        if len(short) <= NAME_WIDTH:
            return short
    half = (NAME_WIDTH - 1) // 2
    return f"{name[:half]}…{name[-half:]}"


def _count(value: int) -> str:
    return f"{value:,}"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def stats_table(
    stats: Mapping[str, NodeStatsSnapshot], console: Console, title: str | None = None
) -> Table:
    """One row per node with the :data:`STATS_COLUMNS`."""
    table = Table(
        box=_box(console),
        show_edge=console.is_terminal,
        title=title,
        title_justify="left",
        pad_edge=False,
    )
    for column in STATS_COLUMNS:
        numeric = column not in ("node", "mark", "kind")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    remote = any(snap.extra and "rtt_p50_ms" in snap.extra for snap in stats.values())
    if remote:
        table.add_column("remote hop (rtt p50/p99 ms, in flight)", justify="left", no_wrap=True)
    for name, snap in stats.items():
        queue = f"{snap.queue_depth}/{snap.queue_capacity}" if snap.kind != "source" else "-"
        table.add_row(
            Text(display_name(name), style=_STATE_STYLE.get(snap.state, "")),
            snap.mark,
            snap.kind,
            _count(snap.received),
            _count(snap.sent),
            f"{snap.rate:,.1f}",
            queue,
            _ms(snap.p50_ms),
            _ms(snap.p99_ms),
            Text(_count(snap.errors), style="red" if snap.errors else ""),
            Text(_count(snap.dropped), style="yellow" if snap.dropped else ""),
            *([_remote_cell(snap)] if remote else []),
        )
    return table


def _remote_cell(snap: NodeStatsSnapshot) -> Text:
    """The Warp's view of its remote hop: round trip quantiles, requests in flight, failures."""
    extra = snap.extra or {}
    if "rtt_p50_ms" not in extra:
        return Text("")
    text = (
        f"{_ms(extra['rtt_p50_ms'])}/{_ms(extra['rtt_p99_ms'])}  "
        f"{extra.get('in_flight', 0)}/{extra.get('window', 0)}  {extra.get('target', '')}"
    )
    failures = extra.get("failures", 0)
    if failures:
        return Text(text + f"  {failures} failed", style="red")
    return Text(text)


def _progress_line(done: int, total: int | None, elapsed_s: float) -> RenderableType:
    if total is None or total <= 0:
        return Text(f"produced {done:,} messages  {elapsed_s:.1f} s")
    table = Table.grid(padding=(0, 1))
    table.add_column(width=40)
    table.add_column()
    pct = min(100.0, 100.0 * done / total)
    table.add_row(
        ProgressBar(total=float(total), completed=float(min(done, total)), width=40),
        Text(f"{done:,}/{total:,}  {pct:3.0f}%  {elapsed_s:.1f} s"),
    )
    return table


def live_view(
    name: str,
    state: str,
    stats: Mapping[str, NodeStatsSnapshot],
    progress: tuple[int, int | None],
    elapsed_s: float,
    console: Console,
) -> RenderableType:
    """What the live display shows on each refresh."""
    title = Text.assemble(
        ("pipeline ", ""), (name, "bold"), ("  ", ""), (state, _STATE_STYLE.get(state, ""))
    )
    return Group(title, stats_table(stats, console), _progress_line(*progress, elapsed_s))


def summary(name: str, result: PipelineResult, console: Console) -> RenderableType:
    """The final report: the stats table, elapsed time and how the run ended."""
    state = Text(result.state, style=_STATE_STYLE.get(result.state, ""))
    footer = Text.assemble(
        "pipeline ",
        (name, "bold"),
        ": ",
        state,
        f" after {result.elapsed_s:.2f} s",
    )
    return Group(stats_table(result.stats, console), footer)


def marks_table(specs: Sequence[NodeSpec], console: Console) -> Table:
    """Every mark with its kind and one-line summary."""
    table = Table(box=_box(console), show_edge=console.is_terminal, pad_edge=False)
    table.add_column("mark", no_wrap=True, style="bold")
    table.add_column("kind", no_wrap=True)
    table.add_column("summary")
    for spec in specs:
        table.add_row(spec.mark, spec.kind, spec.summary)
    return table


def mark_table(spec: NodeSpec, console: Console) -> RenderableType:
    """One mark: its summary, origin and arguments (name, type, default or "required", help)."""
    header = Text.assemble(
        (spec.mark, "bold"), f" ({spec.kind})", f": {spec.summary}" if spec.summary else ""
    )
    origin = Text(f"from {spec.origin}", style="dim")
    if getattr(spec.cls, "light", False):
        origin.append("; light: served on fontus serve's event loop (writing-nodes.md)")
    if not spec.arguments:
        return Group(header, origin, Text("no arguments"))
    table = Table(box=_box(console), show_edge=console.is_terminal, pad_edge=False)
    table.add_column("argument", no_wrap=True, style="bold")
    table.add_column("type", no_wrap=True)
    table.add_column("default", no_wrap=True)
    table.add_column("help")
    for arg in spec.arguments:
        default = Text("required", style="yellow") if arg.required else Text(repr(arg.default))
        table.add_row(arg.name, arg.type_name, default, arg.help)
    return Group(header, origin, table)
