"""pyHanko's signing and validation APIs are coroutines; Django's code paths are sync."""

from __future__ import annotations

import asyncio
import concurrent.futures


def run(coro):
    """Run ``coro`` to completion, also when the caller already sits inside an event loop
    (a browser test's sync Playwright, an ASGI view): then on a short-lived thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
