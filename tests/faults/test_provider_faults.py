"""What real providers do on bad days, over every provider route's real SDK and wire format.

For each fault: a transient one followed by a good reply is retried and the run succeeds;
one that persists ends in one clear ProviderError that names the provider's trouble,
never the API key; the failed run leaves the history as it was; the next run works.
"""

from __future__ import annotations

import logging

import pytest

from fake_provider import Fault, Turn
from llmproc import LLMProcess, ProviderError
from provider_harness import ROUTES, Harness, make_harness, start

SECRET = "sk-fault-suite-0d5f3c9a7b1e"

FAULTS: dict[str, Fault] = {
    "429 with retry-after": Fault(
        status=429, error_type="rate_limit_error", message="slow down", retry_after="0"
    ),
    "429 without retry-after": Fault(status=429, error_type="rate_limit_error", message="slow down"),
    "500": Fault(status=500, error_type="api_error", message="Internal server error"),
    "503": Fault(status=503, error_type="unavailable", message="Service unavailable"),
    "529 overloaded": Fault(status=529, error_type="overloaded_error", message="Overloaded"),
    "connection reset": Fault(drop="reset"),
    "empty reply": Fault(drop="close"),
    "read timeout": Fault(hang=12),
    "malformed body": Fault(status=200, malformed=True),
    "stream cut mid-event": Fault(cut_stream_after=0),  # inside the first event, before any text
    "error event in the stream": Fault(in_stream=True, error_type="overloaded_error", message="Overloaded"),
}
STREAM_ONLY = {"stream cut mid-event", "error event in the stream"}
MODES = ["plain", "streamed"]
READ_TIMEOUT = 2.0
"""[model] timeout for the read-timeout fault, which hangs far longer. Only that fault gets a
short one: with 0.5 s for every case, a good reply after an ordinary fault timed out too on a
loaded CI machine."""
TIMEOUT = 60.0
"""[model] timeout for every other case: never reached, however loaded the machine."""


def cases() -> list[tuple[str, str]]:
    return [
        (fault, mode) for fault in FAULTS for mode in MODES if mode == "streamed" or fault not in STREAM_ONLY
    ]


@pytest.fixture(params=ROUTES)
def harness(request, fake, monkeypatch) -> Harness:
    fake.api_key = SECRET
    return make_harness(request.param, fake, monkeypatch)


def applies(harness: Harness, fault: str) -> bool:
    # Gemini's API has no error events inside a stream: a failure there is an HTTP status
    return not (fault == "error event in the stream" and harness.provider.startswith("gemini"))


def process_for(harness: Harness, write_program, mode: str, retries: int, fault: str = "") -> LLMProcess:
    timeout = READ_TIMEOUT if fault == "read timeout" else TIMEOUT
    process = start(harness, write_program, retries=retries, timeout=timeout)
    if mode == "streamed":
        process.add_callback(lambda event: None)  # a listener makes the provider call stream
    return process


@pytest.mark.parametrize(("fault", "mode"), cases())
async def test_a_transient_fault_is_retried_and_the_run_succeeds(harness, write_program, fault, mode):
    if not applies(harness, fault):
        pytest.skip("no such fault on this provider's API")
    process = process_for(harness, write_program, mode, retries=1, fault=fault)
    harness.fake.push(FAULTS[fault], Turn(text="recovered"))
    result = await process.run("hello")
    assert result.text == "recovered"
    assert len(process.messages) == 2  # the user's message and one reply: nothing of the fault kept
    assert harness.fake.remaining == 0


@pytest.mark.parametrize(("fault", "mode"), cases())
async def test_a_fault_that_persists_is_one_clear_error_and_loses_nothing(
    harness, write_program, fault, mode, caplog
):
    if not applies(harness, fault):
        pytest.skip("no such fault on this provider's API")
    caplog.set_level(logging.DEBUG, logger="llmproc")
    process = process_for(harness, write_program, mode, retries=0, fault=fault)
    harness.fake.push(Turn(text="first"))
    await process.run("one")
    before = process.messages
    harness.fake.push(*[FAULTS[fault]] * 3)
    with pytest.raises(ProviderError) as info:
        await process.run("two")
    message = str(info.value)
    assert message.strip() and "\n" not in message and "Traceback" not in message
    assert info.value.provider == harness.provider
    assert info.value.retryable, message  # all of these are worth trying again later
    assert SECRET not in message and SECRET not in caplog.text
    assert process.messages == before
    harness.fake._script.clear()
    harness.fake.push(Turn(text="works"))
    assert (await process.run("three")).text == "works"
    assert [m.role for m in process.messages] == ["user", "assistant"] * 2


@pytest.mark.parametrize("fault", ["503", "malformed body", "stream cut mid-event"])
async def test_retries_stop_at_max_retries(harness, write_program, fault):
    """Whichever layer retries (the SDK or llmproc), a request is tried 1 + max_retries times."""
    process = process_for(harness, write_program, "streamed", retries=2, fault=fault)
    harness.fake.push(*[FAULTS[fault]] * 5)
    with pytest.raises(ProviderError):
        await process.run("hello")
    assert len(harness.fake.requests) == 3
    assert process.messages == ()


async def test_a_stream_cut_after_text_was_shown_is_not_repeated(harness, write_program):
    """Once a listener has shown part of a reply, a retry would show it twice: the run fails instead."""
    process = start(harness, write_program, retries=2, timeout=TIMEOUT)
    shown: list[str] = []
    process.add_callback(lambda event: shown.append(getattr(event, "text", "")))
    harness.fake.push(Fault(cut_stream_after=6), Turn(text="never asked for"))
    with pytest.raises(ProviderError, match="stream ended before the reply was complete"):
        await process.run("hello")
    assert "partial" in "".join(shown)
    assert process.messages == () and harness.fake.remaining == 1
