"""Messages: identity, freezing on transmit, evolve, equality, and Node.transmit stamping."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fontus.core import (
    BytesPayload,
    FrozenMessageError,
    Message,
    Node,
    NodeError,
    ObjectPayload,
    PayloadError,
    Sink,
    Source,
)


class Recorder:
    """A minimal NodeHost that keeps what a node emits."""

    def __init__(self) -> None:
        self.emitted: list[Message[Any]] = []

    def emit(self, node: Node, message: Message[Any]) -> None:
        self.emitted.append(message)

    def stopping(self) -> bool:
        return False

    def wait(self, seconds: float) -> bool:
        return False


class Echo(Node):
    def update(self, message: Message[Any]) -> None:
        self.transmit(message)


def attached(node: Node, name: str = "echo") -> Recorder:
    host = Recorder()
    node.attach(name, host)
    return host


def test_message_ids_increase_and_fields_default() -> None:
    a = Message(BytesPayload(b"a"))
    b = Message(BytesPayload(b"b"))
    assert b.id > a.id
    assert a.creator == "" and a.version == 0
    assert a.meta == {} and a.timers == {}
    assert not a.frozen
    assert a.created_at > 0


def test_message_refuses_a_non_payload() -> None:
    with pytest.raises(PayloadError, match=r"payload must be a Payload.*got dict"):
        Message({"a": 1})  # type: ignore[arg-type]


def test_unfrozen_message_can_be_changed() -> None:
    msg = Message(BytesPayload(b"x"), meta={"a": 1})
    msg.meta["b"] = 2
    msg.creator = "me"
    assert msg.meta == {"a": 1, "b": 2}
    assert msg.creator == "me"


def test_transmit_freezes_the_message_and_setting_attributes_raises() -> None:
    node = Echo()
    host = attached(node)
    sent = node.transmit(Message(BytesPayload(b"x")))
    assert sent.frozen
    assert host.emitted == [sent]
    for name, value in [("payload", BytesPayload(b"y")), ("meta", {}), ("creator", "x")]:
        with pytest.raises(FrozenMessageError, match=r"frozen.*evolve"):
            setattr(sent, name, value)


def test_frozen_message_error_names_the_message_and_the_fix() -> None:
    msg = Message(BytesPayload(b"x"), creator="src").freeze()
    with pytest.raises(FrozenMessageError) as info:
        msg.version = 9
    text = str(info.value)
    assert f"message {msg.id} from 'src'" in text
    assert "'version'" in text
    assert "message.evolve(" in text
    assert isinstance(info.value, AttributeError)


def test_frozen_meta_and_timers_are_read_only() -> None:
    msg = Message(
        ObjectPayload(), meta={"tags": ["a"], "inner": {"k": 1}}, timers={"t": 1}
    ).freeze()
    with pytest.raises(TypeError):
        msg.meta["new"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        msg.meta["inner"]["k"] = 2
    with pytest.raises(TypeError):
        msg.timers["t"] = 2.0  # type: ignore[index]
    assert msg.meta["tags"] == ("a",)
    assert msg.timers == {"t": 1.0}
    assert isinstance(msg.timers["t"], float)


def test_freeze_is_idempotent_and_returns_the_message() -> None:
    msg = Message(BytesPayload(b"x"))
    assert msg.freeze() is msg
    assert msg.freeze() is msg


def test_freeze_refuses_meta_that_is_not_json_like_naming_the_path() -> None:
    msg = Message(BytesPayload(b"x"), meta={"a": {"b": {1, 2}}})
    with pytest.raises(PayloadError, match=r"meta\.a\.b: type set is not supported"):
        msg.freeze()
    assert not msg.frozen


def test_freeze_refuses_timers_that_are_not_seconds() -> None:
    msg = Message(BytesPayload(b"x"), timers={"decode": "fast"})  # type: ignore[dict-item]
    with pytest.raises(PayloadError, match=r"timers\['decode'\] must be seconds"):
        msg.freeze()


def test_frozen_meta_arrays_are_read_only() -> None:
    msg = Message(BytesPayload(b"x"), meta={"a": np.arange(3)}).freeze()
    with pytest.raises(ValueError):
        msg.meta["a"][0] = 9


def test_evolve_derives_a_new_unfrozen_message_keeping_meta_and_timers() -> None:
    original = Message(
        BytesPayload(b"x"), creator="src", version=3, meta={"a": 1}, timers={"t": 0.5}
    ).freeze()
    derived = original.evolve(meta={"b": 2}, timers={"u": 1.0})
    assert not derived.frozen
    assert derived.id != original.id
    assert derived.payload is original.payload
    assert derived.meta == {"a": 1, "b": 2}
    assert derived.timers == {"t": 0.5, "u": 1.0}
    assert derived.created_at == original.created_at
    assert (derived.creator, derived.version) == ("src", 3)
    derived.meta["c"] = 3  # mutable again, and the original is untouched
    assert original.meta == {"a": 1}


def test_evolve_with_a_new_payload_and_field_changes() -> None:
    original = Message(BytesPayload(b"x")).freeze()
    derived = original.evolve(BytesPayload(b"y"), creator="other")
    assert derived.payload == BytesPayload(b"y")
    assert derived.creator == "other"


def test_transmit_of_a_received_frozen_message_derives_a_new_one() -> None:
    node = Echo()
    host = attached(node, "echo")
    received = Message(BytesPayload(b"x"), creator="src", meta={"k": 1}).freeze()
    node.update(received)
    (sent,) = host.emitted
    assert sent is not received
    assert sent.id != received.id
    assert sent.creator == "echo"
    assert sent.meta == {"k": 1}
    assert sent.frozen and sent.created_at == received.created_at
    assert received.creator == "src"


def test_passed_on_shares_the_frozen_parts_and_merges_timers() -> None:
    original = Message(
        BytesPayload(b"x"), creator="src", version=3, meta={"a": (1, 2)}, timers={"t": 0.5}
    ).freeze()
    plain = original.passed_on()
    assert plain.frozen and plain.id != original.id
    assert plain.payload is original.payload
    assert plain.meta is original.meta and plain.timers is original.timers
    assert (plain.created_at, plain.creator, plain.version) == (original.created_at, "src", 3)
    timed = original.passed_on({"hop": 0.25, "t": 1.5})
    assert timed.timers == {"t": 1.5, "hop": 0.25}
    assert original.timers == {"t": 0.5}
    # What evolve() then freeze() gives, but for the id.
    evolved = original.evolve(timers={"hop": 0.25, "t": 1.5}).freeze()
    assert all(
        getattr(timed, f) == getattr(evolved, f)
        for f in ("payload", "meta", "timers", "created_at", "creator", "version")
    )
    with pytest.raises(FrozenMessageError, match="set 'creator'"):
        timed.creator = "other"


def test_renew_gives_a_message_nobody_holds_what_passed_on_would_without_a_copy() -> None:
    decoded = Message(
        BytesPayload(b"x"), creator="srv", version=3, meta={"a": 1}, timers={"t": 0.5}
    ).freeze()
    first_id, meta = decoded.id, decoded.meta
    expected = decoded.passed_on({"hop": 0.25, "t": 1.5})
    renewed = decoded._fontus_renew({"hop": 0.25, "t": 1.5})
    assert renewed is decoded and renewed.frozen
    assert renewed.id not in (first_id, expected.id)
    assert renewed.meta is meta
    assert all(
        getattr(renewed, f) == getattr(expected, f)
        for f in ("payload", "meta", "timers", "created_at", "creator", "version")
    )
    # Without timers only the id changes; a message not frozen yet is frozen first.
    unfrozen = Message(BytesPayload(b"y"), timers={"t": 2})
    assert unfrozen._fontus_renew().frozen and unfrozen.timers == {"t": 2.0}


def test_passed_on_needs_a_frozen_message() -> None:
    with pytest.raises(FrozenMessageError, match="needs a frozen message"):
        Message(BytesPayload(b"x")).passed_on()


def test_transmit_stamps_creator_and_increasing_versions() -> None:
    node = Echo()
    host = attached(node, "stamp")
    node.transmit(BytesPayload(b"a"))
    node.transmit(Message(BytesPayload(b"b")))
    assert [(m.creator, m.version) for m in host.emitted] == [("stamp", 0), ("stamp", 1)]
    assert all(m.frozen for m in host.emitted)


def test_transmit_refuses_other_types() -> None:
    node = Echo()
    attached(node)
    with pytest.raises(NodeError, match="transmit\\(\\) takes a Message or a Payload, got dict"):
        node.transmit({"a": 1})  # type: ignore[arg-type]


def test_transmit_from_a_detached_node_says_how_to_run_it() -> None:
    with pytest.raises(NodeError, match=r"not attached to a pipeline.*fontus\.Pipeline"):
        Echo().transmit(BytesPayload(b"x"))


def test_sink_does_not_transmit_and_source_has_no_update() -> None:
    class S(Sink):
        def update(self, message: Message[Any]) -> None:
            pass

    class Src(Source):
        pass

    sink = S()
    attached(sink, "out")
    with pytest.raises(NodeError, match="node 'out': a sink does not transmit"):
        sink.transmit(BytesPayload(b"x"))
    src = Src()
    attached(src, "in")
    with pytest.raises(NodeError, match="a source has no inputs"):
        src.update(Message(BytesPayload(b"x")))
    with pytest.raises(NotImplementedError, match=r"source 'in'.*must define generate"):
        src.generate()


def test_node_without_update_says_so() -> None:
    class Empty(Node):
        pass

    node = Empty()
    attached(node, "empty")
    with pytest.raises(NotImplementedError, match="node 'empty' \\(Empty\\) must define update"):
        node.update(Message(BytesPayload(b"x")))


def test_default_set_on_config_sets_an_existing_attribute_or_names_the_fix() -> None:
    class Tunable(Node):
        def __init__(self, level: int = 1) -> None:
            self.level = level

    node = Tunable()
    attached(node, "tune")
    node.set_on_config("level", 5)
    assert node.level == 5
    with pytest.raises(NodeError, match=r"node 'tune': cannot configure 'nope'.*override"):
        node.set_on_config("nope", 1)


def test_message_equality_compares_every_field() -> None:
    a = Message(BytesPayload(b"x"), id=7, created_at=1.0, meta={"v": np.arange(2)})
    b = Message(BytesPayload(b"x"), id=7, created_at=1.0, meta={"v": np.arange(2)})
    assert a == b
    assert a != Message(BytesPayload(b"x"), id=8, created_at=1.0, meta={"v": np.arange(2)})
    assert a != Message(BytesPayload(b"x"), id=7, created_at=1.0, meta={"v": np.arange(2.0)})
    assert a.freeze() == b  # frozen and unfrozen forms compare equal
    with pytest.raises(TypeError):
        hash(a)
