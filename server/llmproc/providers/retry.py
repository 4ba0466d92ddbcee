"""One provider request with error mapping, and the retries the SDKs do not do themselves.

The SDKs retry HTTP failures (408/409/429/5xx, and for some connection errors) honouring
retry-after. They do not retry a failure that arrives after a 200: an overload event
inside a stream, a cut connection, a body that is not JSON; nor, for some SDKs, a
connection reset. Those are retried here when retryable, but only while no text has
reached the caller, so nothing is shown twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from ..errors import ProviderError
from .base import ProviderResponse

TextSink = Callable[[str], Awaitable[None]]


async def request_with_retries(
    attempt: Callable[[TextSink], Awaitable[ProviderResponse]],
    *,
    on_text: TextSink | None,
    map_error: Callable[[Exception], ProviderError | None],
    max_retries: int,
    sdk_retried: Callable[[Exception], bool],
) -> ProviderResponse:
    """`sdk_retried(err)`: whether the SDK already spent its retries on this kind of failure."""
    tries = 0
    while True:
        emitted = False

        async def forward(text: str) -> None:
            nonlocal emitted
            emitted = True
            if on_text is not None:
                await on_text(text)

        try:
            return await attempt(forward)
        except Exception as err:
            error = err if isinstance(err, ProviderError) else map_error(err)
            if error is None:
                raise
            again = error.retryable and not emitted and not sdk_retried(err)
            if again and tries < max_retries:
                await anyio.sleep(min(0.5 * 2**tries, 8.0))  # 0.5 s, 1 s, 2 s ... as the SDKs do
                tries += 1
                continue
            raise error from None
