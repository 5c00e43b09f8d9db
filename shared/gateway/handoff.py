"""A bounded hand-off from one task to another, first in, first out.

``asyncio.Queue`` does this for any number of producers and consumers, at the cost of four
deques per queue (about 2.8 KB): with a thousand idle streams open, each with its queue, that
was a seventh of what they held. A stream's relay has one producer and one consumer, so one
waiting future each way is all it needs.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    __slots__ = ("_getter", "_items", "_putter", "_size")

    def __init__(self, size: int) -> None:
        self._items: list[T] = []
        self._size = size
        self._getter: asyncio.Future[None] | None = None
        self._putter: asyncio.Future[None] | None = None

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return len(self._items) >= self._size

    def put_nowait(self, item: T) -> None:
        """Hand ``item`` over even when full (the caller checked, or must not wait)."""
        self._items.append(item)
        _wake(self._getter)

    async def put(self, item: T) -> None:
        while self.full():
            self._putter = asyncio.get_running_loop().create_future()
            try:
                await self._putter
            finally:
                self._putter = None
        self.put_nowait(item)

    async def get(self) -> T:
        while not self._items:
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        item = self._items.pop(0)
        _wake(self._putter)
        return item


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
