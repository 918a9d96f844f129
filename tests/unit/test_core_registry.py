"""The registry: marks from code, lazy entry points and plugin folders; failures reported."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from fontus.core import (
    ConfigError,
    Message,
    Node,
    Pipeline,
    PipelineInvalid,
    PluginLoadError,
    Registry,
    Sink,
    Source,
    default_registry,
)
from fontus.core.registry import kind_of


class SpeechDetector(Node):
    """Finds speech in audio.

    Args:
        level: how sure to be.
    """

    def __init__(self, level: float = 0.5) -> None:
        self.level = level

    def update(self, message: Message[Any]) -> None:
        pass


class Marked(Node):
    mark = "explicit_mark"

    def update(self, message: Message[Any]) -> None:
        pass


class Out(Sink):
    def update(self, message: Message[Any]) -> None:
        pass


class In(Source):
    pass


def test_add_registers_under_snake_case_name_with_kind_summary_and_arguments() -> None:
    registry = Registry(entry_points=False)
    spec = registry.add(SpeechDetector)
    assert spec.mark == "speech_detector"
    assert (spec.kind, spec.summary, spec.origin) == ("proc", "Finds speech in audio.", "code")
    assert spec.argument_names == ("level",)
    assert spec.argument("level") is not None and spec.argument("nope") is None
    assert registry.get("speech_detector") is spec
    assert "speech_detector" in registry and "other" not in registry
    node = spec.build({"level": 0.9})
    assert isinstance(node, SpeechDetector) and node.level == 0.9


def test_add_honours_a_mark_attribute_or_an_explicit_mark() -> None:
    registry = Registry(entry_points=False)
    assert registry.add(Marked).mark == "explicit_mark"
    assert registry.add(SpeechDetector, "vad").mark == "vad"
    assert registry.marks() == ["explicit_mark", "vad"]


def test_add_refuses_what_is_not_a_node() -> None:
    with pytest.raises(ConfigError, match=r"must subclass fontus\.Node"):
        Registry(entry_points=False).add(dict)  # type: ignore[arg-type]


def test_kind_of_node_classes() -> None:
    assert [kind_of(c) for c in (In, SpeechDetector, Out)] == ["source", "proc", "sink"]


def test_unknown_mark_lists_close_matches() -> None:
    registry = Registry(entry_points=False)
    registry.add(SpeechDetector, "gain")
    registry.add(SpeechDetector, "gains")
    with pytest.raises(ConfigError, match="unknown mark 'gian'; did you mean 'gain' or 'gains'\\?"):
        registry.get("gian")
    with pytest.raises(ConfigError, match="run 'fontus nodes' to list the available marks"):
        registry.get("zzz")


def test_specs_and_extend() -> None:
    registry = Registry(entry_points=False)
    spec = registry.add(SpeechDetector, "vad")
    other = Registry(entry_points=False)
    other.extend([spec])
    assert other.specs() == [spec]


def test_default_registry_is_one_process_wide_instance() -> None:
    assert default_registry() is default_registry()


# -- entry points ------------------------------------------------------------------


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, points: dict[str, str]) -> None:
    eps = [
        importlib.metadata.EntryPoint(name=name, value=value, group="fontus.nodes")
        for name, value in points.items()
    ]

    def entry_points(**params: Any) -> list[importlib.metadata.EntryPoint]:
        assert params == {"group": "fontus.nodes"}
        return eps

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_entry_point_marks_are_listed_but_imported_only_when_used(
    module_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"lazy_nodes_{uuid.uuid4().hex[:8]}"
    (module_dir / f"{module}.py").write_text(
        textwrap.dedent(
            """
            from fontus.core import Node

            class Lazy(Node):
                def __init__(self, size: int = 3) -> None:
                    self.size = size

                def update(self, message):
                    pass
            """
        )
    )
    fake_entry_points(monkeypatch, {"lazy": f"{module}:Lazy"})
    registry = Registry()
    assert registry.marks() == ["lazy"]
    assert module not in sys.modules
    spec = registry.get("lazy")
    assert module in sys.modules
    assert (spec.mark, spec.origin, spec.argument_names) == (
        "lazy",
        f"entry point {module}:Lazy",
        ("size",),
    )
    sys.modules.pop(module, None)


def test_an_entry_point_that_fails_to_import_is_reported_when_its_mark_is_used(
    module_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"broken_nodes_{uuid.uuid4().hex[:8]}"
    (module_dir / f"{module}.py").write_text("import not_a_real_dependency_xyz\n")
    fake_entry_points(monkeypatch, {"broken": f"{module}:Broken"})
    registry = Registry()
    with pytest.raises(PluginLoadError) as info:
        registry.get("broken")
    assert info.value.node == "broken"
    assert "entry point for mark 'broken' failed to import: ModuleNotFoundError" in str(info.value)
    assert "not_a_real_dependency_xyz" in str(info.value)
    assert "broken" not in registry
    assert "broken" in registry.failures
    config = {"pipeline": {"nodes": [{"name": "b", "mark": "broken"}]}}
    with pytest.raises(PipelineInvalid) as invalid:
        Pipeline.from_dict(config, registry=registry)
    assert invalid.value.problems[0].startswith(
        "node 'b': entry point for mark 'broken' failed to import: ModuleNotFoundError"
    )


# -- plugin folders ----------------------------------------------------------------

UPPER = """
from fontus.core import Node, ObjectPayload

class Upper(Node):
    '''Upper-cases text.'''

    def update(self, message):
        self.transmit(ObjectPayload({"text": message.payload["text"].upper()}))
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_plugin_folder_classes_are_registered_once(tmp_path: Path) -> None:
    write(tmp_path / "nodes" / "proc" / "_upper" / "upper.py", UPPER)
    write(tmp_path / "nodes" / "__init__.py", "")
    registry = Registry(entry_points=False)
    assert registry.load_plugins(tmp_path) == ["upper"]
    spec = registry.get("upper")
    assert spec.summary == "Upper-cases text."
    assert spec.origin.endswith("upper.py")
    assert registry.load_plugins(tmp_path) == []  # a folder is scanned once


def test_classes_imported_by_a_plugin_are_not_registered_again(tmp_path: Path) -> None:
    write(tmp_path / "p.py", "from fontus.core import Node, Sink, Source\n" + UPPER)
    registry = Registry(entry_points=False)
    assert registry.load_plugins(tmp_path) == ["upper"]


def test_plugin_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"plugin folder '.*missing' does not exist"):
        Registry(entry_points=False).load_plugins(tmp_path / "missing")


def test_a_plugin_that_fails_to_import_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "_flaky" / "flaky.py", "import os\n\nvalue = 1 / 0\n")
    registry = Registry(entry_points=False)
    assert registry.load_plugins(tmp_path) == []
    with pytest.raises(PluginLoadError) as info:
        registry.get("flaky")
    assert info.value.detail == (
        f"plugin file {bad} failed to import: ZeroDivisionError: division by zero (line 3)"
    )


def test_a_plugin_with_a_syntax_error_names_its_own_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "typo.py", "x = 1\ndef f(:\n")
    registry = Registry(entry_points=False)
    registry.load_plugins(tmp_path)
    with pytest.raises(PluginLoadError) as info:
        registry.get("typo")
    assert info.value.detail == (
        f"plugin file {bad} failed to import: SyntaxError: invalid syntax (typo.py, line 2)"
    )


def test_unknown_marks_mention_plugins_that_failed(tmp_path: Path) -> None:
    bad = write(tmp_path / "helpers.py", "raise ImportError('needs torch')\n")
    registry = Registry(entry_points=False)
    registry.load_plugins(tmp_path)
    with pytest.raises(ConfigError) as info:
        registry.get("detector")
    assert str(info.value) == (
        "unknown mark 'detector'; run 'fontus nodes' to list the available marks "
        f"(plugins that failed to import: {bad})"
    )


def test_a_pipeline_file_loads_its_plugin_folders(tmp_path: Path) -> None:
    write(tmp_path / "plugins" / "upper.py", UPPER)
    write(tmp_path / "plugins" / "_boom" / "boom.py", "raise RuntimeError('no device')\n")
    raw = {
        "plugins": ["plugins"],
        "pipeline": {"nodes": [{"name": "u", "mark": "upper"}, {"name": "b", "mark": "boom"}]},
    }
    with pytest.raises(PipelineInvalid) as info:
        Pipeline.from_dict(raw, base_dir=tmp_path, registry=Registry(entry_points=False))
    (problem,) = info.value.problems
    assert problem == (
        f"node 'b': plugin file {tmp_path / 'plugins' / '_boom' / 'boom.py'} failed to import: "
        "RuntimeError: no device (line 1)"
    )
    raw["pipeline"]["nodes"] = [{"name": "u", "mark": "upper"}]  # type: ignore[index]
    pipeline = Pipeline.from_dict(raw, base_dir=tmp_path, registry=Registry(entry_points=False))
    assert type(pipeline.nodes["u"]).__name__ == "Upper"
