"""Pipeline files: parsing, ${ENV} expansion, --set overrides, and file errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fontus.core import (
    ConfigError,
    InboxConfig,
    LinkConfig,
    PipelineInvalid,
    SyncConfig,
    load_pipeline,
    parse_pipeline,
)
from fontus.core.config import apply_overrides


def doc(*nodes: dict[str, Any], links: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "version": "1",
        "pipeline": {"name": "demo", "nodes": list(nodes), "links": links or []},
    }


def problems(raw: Any, **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(PipelineInvalid) as info:
        parse_pipeline(raw, **kwargs)
    return info.value.problems


# -- parsing ---------------------------------------------------------------------


def test_parse_reads_nodes_links_and_defaults() -> None:
    config = parse_pipeline(
        {
            "version": 2,
            "pipeline": {
                "name": "demo",
                "id": "x1",
                "folder": "out",
                "nodes": [
                    {"name": "src", "type": "source", "mark": "numbers", "configuration": {"a": 1}},
                    {
                        "name": "sink",
                        "mark": "collect",
                        "inbox": {"capacity": 2, "overflow": "drop_oldest"},
                        "sync": {"mode": "window", "window_ms": 20},
                        "on_error": "stop",
                        "description": "kept as extra",
                    },
                ],
                "links": [{"from": "src", "to": "sink"}],
            },
        }
    )
    assert (config.name, config.id, config.version, config.folder) == ("demo", "x1", "2", "out")
    src, sink = config.nodes
    assert (src.type, src.configuration, src.inbox, src.sync) == (
        "source",
        {"a": 1},
        InboxConfig(),
        SyncConfig(),
    )
    assert sink.inbox == InboxConfig(2, "drop_oldest")
    assert sink.sync == SyncConfig("window", 20)
    assert sink.on_error == "stop"
    assert sink.extra == {"description": "kept as extra"}
    assert config.links == (LinkConfig("src", "sink"),)
    assert config.inputs_of("sink") == ["src"] and config.outputs_of("src") == ["sink"]
    assert config.node("sink") is sink
    with pytest.raises(ConfigError, match="no node named 'nope'"):
        config.node("nope")


def test_parse_accepts_a_file_without_the_pipeline_section() -> None:
    config = parse_pipeline({"nodes": [{"name": "a", "mark": "m"}]})
    assert config.name == "pipeline"
    assert [n.name for n in config.nodes] == ["a"]


def test_sync_shorthand_string() -> None:
    config = parse_pipeline(doc({"name": "a", "mark": "m", "sync": "zip"}))
    assert config.nodes[0].sync == SyncConfig("zip")


def test_every_structural_problem_is_reported_at_once() -> None:
    found = problems(
        doc(
            {"mark": "m"},
            {"name": "a"},
            {"name": "b", "mark": "m", "colour": 1, "type": "filter"},
            {"name": "c", "mark": "m", "configuration": [1]},
            {"name": "d", "mark": "m", "on_error": "ignore"},
            {"name": "e", "mark": "m", "inbox": {"capacity": 0}},
            {"name": "f", "mark": "m", "inbox": {"overflow": "drop_newest", "size": 3}},
            {"name": "g", "mark": "m", "inbox": 5},
            {"name": "h", "mark": "m", "sync": "merge"},
            {"name": "i", "mark": "m", "sync": {"mode": "window", "window_ms": 0, "x": 1}},
            {"name": "j", "mark": "m", "sync": 3},
            "not a node",
            links=[{"from": "a"}, "x"],
        )
    )
    expected = [
        "pipeline.nodes[0]: missing 'name'; every node needs a unique name",
        "node 'a': missing 'mark'; run 'fontus nodes' to list marks",
        "node 'b': unknown field 'colour'; node fields are name, type, mark,",
        "node 'b': type must be one of source, proc, sink, got 'filter'",
        "node 'c': configuration must be a mapping of argument to value",
        "node 'd': on_error must be one of skip, stop, got 'ignore'",
        "node 'e': inbox.capacity must be an int >= 1, got 0",
        "node 'f': inbox has unknown keys ['size']; use capacity and overflow",
        "node 'f': inbox.overflow must be one of block, drop_oldest, got 'drop_newest'",
        "node 'g': inbox must be a mapping like {capacity: 64, overflow: block}",
        "node 'h': sync must be one of passthrough, zip, window, got 'merge'",
        "node 'i': sync has unknown keys ['x']; use mode and window_ms",
        "node 'i': sync.window_ms must be a number > 0, got 0",
        "node 'j': sync must be a string or a mapping, got int",
        "pipeline.nodes[11] must be a mapping with name and mark",
        "pipeline.links[0] must be a mapping {from: NODE, to: NODE}, got {'from': 'a'}",
        "pipeline.links[1] must be a mapping {from: NODE, to: NODE}, got 'x'",
    ]
    assert len(found) == len(expected), found
    for text in expected:
        assert any(p.startswith(text) for p in found), (text, found)


def test_the_top_level_must_be_a_mapping_with_nodes() -> None:
    assert problems([1]) == ("the file must hold a mapping, got list",)
    assert problems({"pipeline": 3}) == ("missing 'pipeline' section with 'nodes' and 'links'",)
    assert problems({"pipeline": {"nodes": []}}) == (
        "pipeline.nodes must be a non-empty list of nodes",
    )
    assert problems(None)[0].startswith("the file is empty")
    single = {"from": "a", "to": "a"}
    found = problems({"pipeline": {"nodes": [{"name": "a", "mark": "m"}], "links": single}})
    assert found == ("pipeline.links must be a list of {from, to}",)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"capacity": True}, "inbox.capacity must be an int >= 1, got True"),
        ({"capacity": "8"}, "inbox.capacity must be an int >= 1"),
        ({"overflow": "drop"}, "inbox.overflow must be one of block, drop_oldest, got 'drop'"),
    ],
)
def test_inbox_config_validates_on_construction(kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        InboxConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"mode": "merge"}, "sync must be one of passthrough, zip, window"),
        ({"mode": "window", "window_ms": -5}, "sync.window_ms must be a number > 0, got -5"),
        ({"mode": "window", "window_ms": True}, "sync.window_ms must be a number > 0, got True"),
        ({"mode": "window", "window_ms": "50"}, "sync.window_ms must be a number > 0"),
    ],
)
def test_sync_config_validates_on_construction(kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        SyncConfig(**kwargs)


def test_plugins_are_resolved_against_the_base_folder(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    raw = {"plugins": "plugins", **doc({"name": "a", "mark": "m"})}
    config = parse_pipeline(raw, base_dir=tmp_path)
    assert config.plugins == ((tmp_path / "plugins").resolve(),)
    found = problems(
        {"plugins": ["missing", 3], **doc({"name": "a", "mark": "m"})}, base_dir=tmp_path
    )
    assert "plugins: entries must be folder paths, got 3" in found
    assert any(p.startswith("plugins: folder 'missing' does not exist (looked in ") for p in found)


# -- ${ENV} ----------------------------------------------------------------------


def env_doc(value: Any) -> dict[str, Any]:
    return doc({"name": "a", "mark": "m", "configuration": {"v": value}})


def test_env_references_are_expanded_in_configuration() -> None:
    config = parse_pipeline(
        env_doc({"path": "${HOME_DIR}/x", "list": ["${N}", 3]}),
        environ={"HOME_DIR": "/data", "N": "7"},
    )
    assert config.nodes[0].configuration == {"v": {"path": "/data/x", "list": ["7", 3]}}


def test_env_default_is_used_when_unset() -> None:
    config = parse_pipeline(env_doc("${MISSING:-fallback}:${SET:-no}"), environ={"SET": "yes"})
    assert config.nodes[0].configuration["v"] == "fallback:yes"
    empty = parse_pipeline(env_doc("[${MISSING:-}]"), environ={})
    assert empty.nodes[0].configuration["v"] == "[]"


def test_missing_env_is_a_problem_naming_the_node_the_field_and_the_fix() -> None:
    found = problems(env_doc({"key": "${API_KEY}"}), environ={})
    assert found == (
        "node 'a': configuration.v.key refers to ${API_KEY}, which is not set; "
        "export API_KEY=... or write ${API_KEY:-default}",
    )


def test_double_dollar_escapes_an_env_reference() -> None:
    config = parse_pipeline(env_doc("$${NOT_EXPANDED} and ${X}"), environ={"X": "x"})
    assert config.nodes[0].configuration["v"] == "${NOT_EXPANDED} and x"


def test_env_is_read_from_the_process_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FONTUS_TEST_VALUE", "from-env")
    config = parse_pipeline(env_doc("${FONTUS_TEST_VALUE}"))
    assert config.nodes[0].configuration["v"] == "from-env"


# -- --set overrides ---------------------------------------------------------------


def base_config() -> Any:
    return parse_pipeline(
        doc(
            {"name": "src", "mark": "m", "configuration": {"count": 1, "opts": {"a": 1}}},
            {"name": "sink", "mark": "m"},
        )
    )


def test_overrides_set_values_parsed_as_yaml() -> None:
    config = apply_overrides(
        base_config(),
        ["src.count=5", "src.name=abc", "sink.rate=0.5", "src.flag=true", "src.empty="],
    )
    assert config.node("src").configuration == {
        "count": 5,
        "opts": {"a": 1},
        "name": "abc",
        "flag": True,
        "empty": "",
    }
    assert config.node("sink").configuration == {"rate": 0.5}


def test_overrides_reach_nested_values_without_changing_the_original() -> None:
    original = base_config()
    config = apply_overrides(original, ["src.opts.b=2", "src.new.deep=x"])
    assert config.node("src").configuration["opts"] == {"a": 1, "b": 2}
    assert config.node("src").configuration["new"] == {"deep": "x"}
    assert original.node("src").configuration["opts"] == {"a": 1}


def test_override_values_keep_equals_signs() -> None:
    config = apply_overrides(base_config(), ["src.query=a=b"])
    assert config.node("src").configuration["query"] == "a=b"


def test_override_errors_are_all_reported() -> None:
    with pytest.raises(PipelineInvalid) as info:
        apply_overrides(base_config(), ["count=5", "src.count", "nope.count=1", ".x=1"])
    assert info.value.problems == (
        "--set 'count=5': expected NODE.ARGUMENT=VALUE, for example src.count=5",
        "--set 'src.count': expected NODE.ARGUMENT=VALUE, for example src.count=5",
        "--set 'nope.count=1': no node named 'nope'; nodes are sink, src",
        "--set '.x=1': expected NODE.ARGUMENT=VALUE, for example src.count=5",
    )


def test_override_problems_join_the_other_problems_of_parse() -> None:
    raw = doc({"name": "src", "mark": "m", "configuration": {"k": "${UNSET}"}})
    found = problems(raw, overrides=["nope.x=1"], environ={})
    assert len(found) == 2
    assert found[0].startswith("--set 'nope.x=1'")
    assert "${UNSET}" in found[1]


def test_overrides_are_applied_by_parse_and_load(tmp_path: Path) -> None:
    raw = doc({"name": "src", "mark": "m", "configuration": {"count": 1}})
    assert parse_pipeline(raw, overrides=["src.count=3"]).node("src").configuration == {"count": 3}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(raw))
    assert load_pipeline(path, ["src.count=4"]).node("src").configuration == {"count": 4}


# -- files ---------------------------------------------------------------------------


def test_load_reads_yaml_and_json(tmp_path: Path) -> None:
    yaml_path = tmp_path / "p.yaml"
    yaml_path.write_text("version: '1'\npipeline:\n  name: y\n  nodes:\n    - {name: a, mark: m}\n")
    config = load_pipeline(yaml_path)
    assert (config.name, config.source) == ("y", str(yaml_path))
    json_path = tmp_path / "p.json"
    json_path.write_text(json.dumps(doc({"name": "a", "mark": "m"})))
    assert load_pipeline(json_path).name == "demo"


def test_plugins_in_a_file_are_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plugins").mkdir()
    path = tmp_path / "p.yaml"
    path.write_text("plugins: [plugins]\npipeline:\n  nodes: [{name: a, mark: m}]\n")
    monkeypatch.chdir("/")
    assert load_pipeline(path).plugins == ((tmp_path / "plugins").resolve(),)


def test_json_parse_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "pipeline": {\n    "nodes": [,]\n  }\n}\n')
    with pytest.raises(ConfigError, match=r"bad\.json: invalid JSON at line 3 column 15: "):
        load_pipeline(path)


def test_yaml_parse_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("pipeline:\n  nodes:\n    - {name: a, mark: m\n  links: []\n")
    with pytest.raises(
        ConfigError, match=r"bad\.yaml: invalid YAML at line 4 column \d+: "
    ) as info:
        load_pipeline(path)
    assert not isinstance(info.value, PipelineInvalid)


def test_missing_file_and_folder_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found; check the path"):
        load_pipeline(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder, expected a JSON or YAML pipeline file"):
        load_pipeline(tmp_path)


def test_problems_in_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("pipeline:\n  nodes: [{name: a}]\n")
    with pytest.raises(PipelineInvalid) as info:
        load_pipeline(path)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}: 1 problem:\n  - node 'a': missing 'mark'")


def test_empty_file_says_it_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    with pytest.raises(PipelineInvalid, match="the file is empty"):
        load_pipeline(path)


def test_a_misspelt_section_is_reported_with_a_close_match_not_ignored() -> None:
    raw = doc({"name": "a", "mark": "m"})
    raw["pipeline"]["link"] = [{"from": "a", "to": "a"}]
    raw["plugin"] = ["./p"]
    assert problems(raw) == (
        "the file: unknown key 'plugin'; did you mean 'plugins'?",
        "pipeline: unknown key 'link'; did you mean 'links'?",
    )


def test_the_flat_form_accepts_nodes_and_links_at_the_top() -> None:
    config = parse_pipeline({"name": "flat", "nodes": [{"name": "a", "mark": "m"}], "links": []})
    assert [n.name for n in config.nodes] == ["a"]
