"""A bounded pool of recognizers and the threads that run them.

Memory is bounded by the number of :class:`~asr.recognizer.Recognizer` instances: a pool holds at
most ``size`` of them (made on first need, then reused), and a caller holds one for the whole
decode (an upload) or the whole stream. Decoding runs on a thread pool, never on the event loop:
onnxruntime releases the GIL while it computes, so a long decode does not stall other clients.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class PoolBusy(Exception):
    """Every recognizer of the pool stayed in use for the whole wait."""


class RecognizerPool:
    def __init__(self, name: str, factory: Callable[[], Any], size: int, executor: ThreadPoolExecutor,
                 initial: Any | None = None):
        self.name = name
        self.size = int(size)
        self._factory = factory
        self._executor = executor
        self._free: list = [initial] if initial is not None else []
        self._sem: asyncio.Semaphore | None = None
        self.in_use = 0
        self.made = 0 if initial is None else 1  # recognizers made so far (free or in use)

    def _semaphore(self) -> asyncio.Semaphore:
        if self._sem is None:  # made on the server's event loop
            self._sem = asyncio.Semaphore(self.size)
        return self._sem

    async def run(self, fn: Callable, *args):
        """``fn(*args)`` on the decoding threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @contextlib.asynccontextmanager
    async def acquire(self, wait: float):
        """A free recognizer, waiting at most ``wait`` seconds (0: not at all) for one; PoolBusy if none."""
        sem = self._semaphore()
        if wait <= 0:
            if sem.locked():
                raise PoolBusy(self.name)
            await sem.acquire()
        else:
            try:
                await asyncio.wait_for(sem.acquire(), wait)
            except asyncio.TimeoutError:
                raise PoolBusy(self.name) from None
        self.in_use += 1
        try:
            if self._free:
                rec = self._free.pop()
            else:
                rec = await self.run(self._factory)
                self.made += 1
            try:
                yield rec
            finally:
                self._free.append(rec)
        finally:
            self.in_use -= 1
            sem.release()

