"""``LoopFifo``: the writer queues of a Warp's stream and of a server session."""

from __future__ import annotations

import asyncio

from fontus.remote._fifo import LoopFifo

#: Bound of every wait: a broken test fails instead of hanging.
WAIT_S = 5.0


def test_items_come_out_in_order_and_a_waiting_reader_is_woken_once_per_put_batch() -> None:
    async def scenario() -> None:
        fifo: LoopFifo[int] = LoopFifo()
        fifo.put(1)
        fifo.put_many([2, 3])
        assert not fifo.woke  # nobody waited: nobody woken
        assert [await fifo.get() for _ in range(3)] == [1, 2, 3]

        reader = asyncio.ensure_future(fifo.get())
        await asyncio.sleep(0)  # the reader now waits on an empty FIFO
        assert not reader.done()
        fifo.put_many([])  # nothing put: the reader stays asleep
        await asyncio.sleep(0)
        assert not reader.done() and not fifo.woke
        fifo.put_many([4, 5])
        assert fifo.woke  # the put woke it (what the server's reader looks at)
        assert await asyncio.wait_for(reader, WAIT_S) == 4
        assert list(fifo.items) == [5]  # the rest is there to take without waiting
        fifo.items.clear()

        fifo.woke = False
        reader = asyncio.ensure_future(fifo.get())
        await asyncio.sleep(0)
        reader.cancel()  # a cancelled reader (a stream that ended) leaves no trap behind
        await asyncio.sleep(0)
        fifo.put(6)
        assert not fifo.woke
        assert await asyncio.wait_for(fifo.get(), WAIT_S) == 6

    asyncio.run(asyncio.wait_for(scenario(), WAIT_S * 2))
