"""One provider request with error mapping, and the retries the SDKs do not do themselves.

The SDKs retry HTTP failures (408/409/429/5xx, connection errors) honouring retry-after.
They can not retry a failure that arrives inside a stream after a 200 (an overload
event, a cut connection). Such a stream is retried here, but only while no text has
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
    retry_in_stream: bool,
) -> ProviderResponse:
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
            if retry_in_stream and error.retryable and not emitted and tries < max_retries:
                tries += 1
                await anyio.sleep(min(0.5 * 2**tries, 8.0))
                continue
            raise error from None
