"""The live stats table keeps every column readable, whatever the node names."""

from __future__ import annotations

import io

import pytest

from fontus.cli._render import NAME_WIDTH, display_name, make_console, stats_table
from fontus.core import Pipeline

GROUP = "+".join(f"g{i}" for i in range(20))  # a remote group of 20 nodes is named after all


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("mic", "mic"),
        ("gain+vad", "gain+vad"),
        (GROUP, "g0+…+g19 (20 nodes)"),
        ("n" * 40, "n" * 15 + "…" + "n" * 15),
    ],
)
def test_long_names_are_shortened_keeping_their_ends(name: str, shown: str) -> None:
    assert display_name(name) == shown
    assert len(display_name(name)) <= NAME_WIDTH


def test_a_long_node_name_does_not_squeeze_the_other_columns() -> None:
    long_name = "a_node_with_a_name_much_longer_than_the_table_wants_to_show"
    pipeline = Pipeline.from_dict(
        {
            "pipeline": {
                "name": "p",
                "nodes": [
                    {"name": "src", "mark": "counter", "configuration": {"count": 1234}},
                    {"name": long_name, "mark": "identity"},
                    {"name": "out", "mark": "null"},
                ],
                "links": [{"from": "src", "to": long_name}, {"from": long_name, "to": "out"}],
            }
        }
    )
    result = pipeline.run(timeout=30)
    assert result.state == "done"
    buffer = io.StringIO()
    console = make_console(buffer)
    console.print(stats_table(pipeline.stats(), console))
    rows = {line.split()[0]: line.split() for line in buffer.getvalue().splitlines() if line}
    shown = display_name(long_name)
    assert shown in rows and long_name not in buffer.getvalue()
    # node, mark, kind, received, sent, ...: counts printed in full, nothing elided
    assert rows[shown][1:5] == ["identity", "proc", "1,234", "1,234"]
    assert "…" not in " ".join(rows[shown][1:])
