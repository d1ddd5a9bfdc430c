"""Per-client state for behavioural detectors, bounded in memory: a small LRU of clients."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class ClientLRU(Generic[V]):
    """client -> state, at most `size` clients; the least recently seen is evicted first."""

    def __init__(self, size: int, factory: Callable[[], V]) -> None:
        self.size = size
        self._factory = factory
        self._data: OrderedDict[str, V] = OrderedDict()

    def get(self, client: str) -> V:
        data = self._data
        state = data.get(client)
        if state is None:
            state = data[client] = self._factory()
            if len(data) > self.size:
                data.popitem(last=False)
        else:
            data.move_to_end(client)
        return state

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> list[tuple[str, V]]:
        return list(self._data.items())
