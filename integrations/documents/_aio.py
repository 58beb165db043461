"""pyHanko's signing and validation APIs are coroutines; Django's code paths are sync.

One event loop per thread, reused: ``asyncio.run`` would build a loop and install a SIGINT
handler on every call, which costs more than the signature itself (bench/documents.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

_local = threading.local()


def _loop() -> asyncio.AbstractEventLoop:
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop


def run(coro):
    """Run ``coro`` to completion, also when the caller already sits inside an event loop
    (a browser test's sync Playwright, an ASGI view): then on a short-lived thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _loop().run_until_complete(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run, coro).result()
