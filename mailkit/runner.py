"""Run mailkit's coroutines from blocking code, including a notebook cell.

A Jupyter kernel already runs an event loop in its main thread, where ``asyncio.run`` refuses
to start a second one; every blocking face (``send_test``, the API senders, the bulk audit, the
widgets) needs the same way around that, so it lives here once.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, also from a notebook whose event loop is running.

    With a loop running in this thread, the coroutine gets a fresh loop in a worker thread and
    the caller waits for it; its exception, if any, is raised in the caller's thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: list[T] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as exc:  # handed back to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=worker, name="mailkit-send")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def start(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Start ``coroutine`` as a task of the running loop and return the task (in a notebook the
    cell returns at once and the widgets keep answering); with no loop running (a script, a
    test), run it to the end here and return None."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return None
    return loop.create_task(coroutine)


async def call_provider(provider: Callable[[], T | Awaitable[T]]) -> T:
    """Get a value (an access token) from ``provider`` without blocking the running loop.

    A plain provider may refresh over the network, so it runs in a worker thread: on the loop
    (in a notebook the kernel's) every widget and timer would freeze until it returned. A
    coroutine function is awaited; a plain one that returns an awaitable has that awaited too.
    """
    value: T | Awaitable[T]
    if inspect.iscoroutinefunction(provider):
        value = provider()
    else:
        value = await asyncio.to_thread(provider)
    if isinstance(value, Awaitable):
        return await value
    return value
