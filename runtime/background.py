"""Run one callable on a daemon thread and poll for its result from the I/O thread.

The I/O thread must keep calling pika (heartbeats), so training never runs
on it. A daemon thread is used rather than an executor so that a shutdown
does not wait for a long ``fit`` to finish.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BackgroundTask(Generic[T]):
    """``start``, then poll ``done``; ``result`` re-raises the callable's exception."""

    def __init__(
        self, fn: Callable[[], T], *, name: str, on_done: Callable[[], None] | None = None
    ) -> None:
        self._fn = fn
        self._on_done = on_done
        self._done = threading.Event()
        self._result: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> BackgroundTask[T]:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._result = self._fn()
        except BaseException as exc:  # handed to the I/O thread, which decides
            self._error = exc
        finally:
            self._done.set()
            if self._on_done is not None:
                self._on_done()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def result(self) -> T:
        if not self._done.is_set():
            raise RuntimeError("task has not finished")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]
