"""A buffer flushed by a daemon thread: the lifecycle shared by tutela's batched writers.

Subclasses implement `flush()` (write what is buffered; raise to keep it for the next try) and may
override `tick()` (one round of the thread). `close()` stops the thread and flushes once more.
"""

from __future__ import annotations

import logging
import threading
from typing import Self

log = logging.getLogger(__name__)


class BackgroundFlusher:
    thread_name = "tutela-flusher"

    def __init__(self, flush_interval: float) -> None:
        self.flush_interval = flush_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def flush(self) -> object:
        raise NotImplementedError(f"{type(self).__name__} must define flush()")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def tick(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # disk full, store busy: the subclass kept the data; retry next tick
            log.warning("%s: flush deferred: %s", self.thread_name, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.tick()
