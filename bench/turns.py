"""Client CPU per conversation turn: LLMProcess against a plain `anthropic` SDK loop.

Both drive the same fake Anthropic server (its own process, so its CPU is not counted)
through N turns of one tool call each (two requests per turn), in this same run, and
the script prints CPU per turn and the ratio llmproc / plain SDK (goal: <= 1.10).

    python bench/turns.py            # 50 and 300 turns
    python bench/turns.py 20         # a quick look
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = "claude-haiku-4-5"
SYSTEM = "You are a benchmark assistant. Use the lookup tool once per question."
TOOL_SCHEMA = {
    "type": "object",
    "properties": {"key": {"type": "string", "description": "What to look up."}},
    "required": ["key"],
    "additionalProperties": False,
}


def lookup(key: str) -> str:
    """Look up a key.

    Args:
        key: What to look up.
    """
    return f"value of {key}"


async def plain_sdk_loop(url: str, turns: int) -> float:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key="test-key", base_url=url, max_retries=0)
    tools = [{"name": "lookup", "description": "Look up a key.", "input_schema": TOOL_SCHEMA}]
    messages: list[dict[str, Any]] = []
    start = time.process_time()
    for turn in range(turns):
        messages.append({"role": "user", "content": f"question {turn}"})
        while True:
            reply = await client.messages.create(
                model=MODEL, max_tokens=1024, system=SYSTEM, messages=messages, tools=tools
            )
            messages.append(
                {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]}
            )
            calls = [b for b in reply.content if b.type == "tool_use"]
            if not calls:
                break
            results = [
                {"type": "tool_result", "tool_use_id": c.id, "content": lookup(**c.input)} for c in calls
            ]
            messages.append({"role": "user", "content": results})
    elapsed = time.process_time() - start
    await client.close()
    return elapsed


async def llmproc_loop(url: str, turns: int) -> float:
    from llmproc import LLMProgram

    program = LLMProgram(model_name=MODEL, provider="anthropic", system_prompt=SYSTEM,
                         parameters={"max_tokens": 1024}, base_url=url, max_retries=0)  # fmt: skip
    program.add_tool(lookup)
    process = await program.start()
    start = time.process_time()
    for turn in range(turns):
        result = await process.run(f"question {turn}")
        assert result.tool_calls and result.text.startswith("done"), result
    return time.process_time() - start


def main() -> None:
    lengths = [int(a) for a in sys.argv[1:]] or [50, 300]
    os.environ["ANTHROPIC_API_KEY"] = "test-key"
    server = subprocess.Popen(
        [sys.executable, "-m", "fake_provider"],
        cwd=ROOT / "tests",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()  # type: ignore[union-attr]
        print(f"{'turns':>6} {'plain SDK ms/turn':>18} {'llmproc ms/turn':>16} {'ratio':>7}")
        for turns in lengths:
            plain, ours = [], []
            for _ in range(2):  # alternate, keep the best of two to damp noise
                plain.append(asyncio.run(plain_sdk_loop(url, turns)))
                ours.append(asyncio.run(llmproc_loop(url, turns)))
            base, mine = min(plain) / turns * 1000, min(ours) / turns * 1000
            print(f"{turns:>6} {base:>18.2f} {mine:>16.2f} {mine / base:>7.2f}")
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
