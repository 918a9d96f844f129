"""``LoopFeed``: a Warp's input taken on the client event loop instead of its node thread.

Upstream threads hand each data item straight to the loop, which encodes it and
writes it as soon as a window slot is free: no node thread wakes up between a
message and its request, and one thread fewer between an answer and the next
request (the delivery thread gives the slot back and the loop sends).  What the
node thread still does comes to it in order through the inbox: end of stream
and configuration changes, which stop the feed until they are handled (a
``Configure`` must follow the requests before it and precede those after it).

An upstream thread waits while ``capacity`` data items are queued or being
written (the inbox's backpressure), and gets its room back once its request is
written, not when it is queued: woken earlier, it would compete with that
write for the GIL (measured: a longer round trip at window 1).  As with an
inbox, an upstream that had to wait resumes once half the room is free.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ..core.inbox import Inbox, InboxClosed, Item, Room
from ..core.payloads import ConfigPayload
from ..core.runner import EOS
from ._loop import client_loop

if TYPE_CHECKING:
    from ..core.runner import NodeRunner
    from .warp import Warp

__all__ = ["LoopFeed"]


class LoopFeed:
    """The ``ItemFeed`` of one Warp (see :class:`fontus.core.inbox.ItemFeed`)."""

    def __init__(self, warp: Warp, inbox: Inbox, runner: NodeRunner) -> None:
        self.warp = warp
        self.inbox = inbox
        self.runner = runner
        self.capacity = inbox.capacity
        #: Set once the Warp's sessions are open and speak the Fontus protocol.
        self.active = False
        self.room = Room(self.capacity)
        #: Items queued on the loop, in arrival order (loop thread only).
        self.items: deque[Item] = deque()
        #: Configuration changes with the node thread, not yet applied: nothing after
        #: them is sent until they are (loop thread, and ``activate`` before it runs).
        self.with_node = 0
        self.closed = False

    def __len__(self) -> int:
        return len(self.items)

    def activate(self) -> None:
        """Take the data items from now on (before the node thread starts).  Changes
        already queued in the inbox (``Pipeline.configure`` before ``run``) go first."""
        self.with_node = self.inbox.count(_is_change)
        self.active = True

    # -- producer threads ---------------------------------------------------------
    def put(self, item: Item) -> None:
        if self.closed:
            raise InboxClosed
        if not (item.control and _for_node_thread(item)):
            self.room.acquire()
            if self.closed:
                self.room.release()  # on to the next waiting producer, which wakes and leaves too
                raise InboxClosed
        client_loop().call(self._arrived, item)

    def close(self) -> None:
        """The node has stopped reading: wake waiting producers; queued items are dropped."""
        if self.closed:
            return
        self.closed = True
        self.room.release(self.capacity)
        client_loop().call(self.items.clear)

    # -- node thread ------------------------------------------------------------------
    def handled(self, item: Item) -> None:
        """The node thread applied a configuration change: what follows it may go."""
        if self.active:
            client_loop().call(self._resume)

    # -- client loop ------------------------------------------------------------------
    def _arrived(self, item: Item) -> None:
        if self.closed:
            return
        items = self.items
        items.append(item)
        if len(items) == 1:
            # Items ahead of this one wait for a window slot or a change with the node
            # thread, each of which drains the feed when it comes: trying now is in vain.
            self.drain()

    def _resume(self) -> None:
        self.with_node = max(0, self.with_node - 1)
        self.drain()

    def drain(self) -> None:
        """Send what can be sent, in order (loop thread; called again when a slot frees)."""
        items = self.items
        warp = self.warp
        while items and not self.with_node and not self.closed:
            item = items[0]
            if item.control and _for_node_thread(item):  # (data items are never control)
                items.popleft()
                if item.value is not EOS:
                    self.with_node += 1  # until the node thread has applied it
                try:
                    self.inbox.put_here(item)
                except InboxClosed:
                    return
                continue
            if not warp.send_from_loop(item.value, item.origin, self):
                return  # no window slot: the next one given back drains again
            items.popleft()


def _is_change(item: Item) -> bool:
    return item.control and isinstance(getattr(item.value, "payload", None), ConfigPayload)


def _for_node_thread(item: Item) -> bool:
    """End of stream and configuration changes go to the node thread; other control
    messages (a ``ControlPayload``) travel to the server as requests do."""
    return item.value is EOS or _is_change(item)
