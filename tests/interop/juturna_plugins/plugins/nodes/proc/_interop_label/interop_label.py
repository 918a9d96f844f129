"""interop_label: a Juturna proc node that transforms {"n": ...} objects deterministically.

Written for Fontus's interop tests.  For an object with a number ``n`` it
emits ``{"n", "square", "shifted", "label", "calls"}``: everything but
``calls`` depends on ``n`` and the configuration only; ``calls`` counts the
messages this instance has processed, so a test can see that each request was
processed exactly once.
"""

from juturna.components import Message, Node
from juturna.payloads import ObjectPayload


class InteropLabel(Node):
    def __init__(self, prefix: str, offset: int, **kwargs):
        super().__init__(**kwargs)
        self._prefix = prefix
        self._offset = offset
        self._calls = 0

    def update(self, message):
        self._calls += 1
        n = int(message.payload["n"])
        out = ObjectPayload(
            n=n,
            square=n * n,
            shifted=n + self._offset,
            label=f"{self._prefix}-{n}",
            calls=self._calls,
        )
        self.transmit(Message(creator=self.name, version=message.version, payload=out))
