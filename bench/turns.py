"""Client CPU per conversation turn: LLMProcess against a plain SDK loop, per provider.

Both drive the same fake provider server (its own process, so its CPU is not counted)
through N turns of one tool call each (two requests per turn), in this same run, and
the script prints CPU per turn and the ratio llmproc / plain SDK (goal: <= 1.10).

    python bench/turns.py                 # every provider, 50 and 300 turns
    python bench/turns.py 20              # a quick look
    python bench/turns.py 50 --provider openai
"""

from __future__ import annotations

import argparse
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


async def plain_openai_loop(url: str, turns: int) -> float:
    import json

    import openai

    start = time.process_time()  # both loops time client creation too
    client = openai.AsyncOpenAI(api_key="test-key", base_url=f"{url}/v1", max_retries=0)
    tools = [{"type": "function", "function": {"name": "lookup", "description": "Look up a key.",
                                               "parameters": TOOL_SCHEMA}}]  # fmt: skip
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"question {turn}"})
        while True:
            reply = await client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
            message = reply.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                break
            for call in message.tool_calls:
                result = lookup(**json.loads(call.function.arguments))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    elapsed = time.process_time() - start
    await client.close()
    return elapsed


async def plain_openai_responses_loop(url: str, turns: int) -> float:
    """The stateless Responses API loop OpenAI documents for reasoning models."""
    import json

    import openai

    start = time.process_time()
    client = openai.AsyncOpenAI(api_key="test-key", base_url=f"{url}/v1", max_retries=0)
    tools = [{"type": "function", "name": "lookup", "description": "Look up a key.",
              "parameters": TOOL_SCHEMA, "strict": False}]  # fmt: skip
    items: list[Any] = []
    for turn in range(turns):
        items.append({"role": "user", "content": f"question {turn}"})
        while True:
            reply = await client.responses.create(
                model="o4-mini", instructions=SYSTEM, input=items, tools=tools, store=False,
                include=["reasoning.encrypted_content"], max_output_tokens=1024,
            )  # fmt: skip
            calls = [item for item in reply.output if item.type == "function_call"]
            for item in reply.output:
                if item.type == "function_call":
                    items.append({"type": "function_call", "call_id": item.call_id, "name": item.name,
                                  "arguments": item.arguments})  # fmt: skip
                elif item.type == "message":
                    items.append({"role": "assistant", "content": reply.output_text})
            if not calls:
                break
            for call in calls:
                result = lookup(**json.loads(call.arguments))
                items.append({"type": "function_call_output", "call_id": call.call_id, "output": result})
    elapsed = time.process_time() - start
    await client.close()
    return elapsed


async def plain_gemini_loop(url: str, turns: int) -> float:
    from google import genai
    from google.genai import types

    start = time.process_time()  # both loops time client creation too
    client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=url))
    declaration = types.FunctionDeclaration(
        name="lookup", description="Look up a key.", parameters_json_schema=TOOL_SCHEMA
    )
    config = types.GenerateContentConfig(
        system_instruction=SYSTEM,
        tools=[types.Tool(function_declarations=[declaration])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        max_output_tokens=1024,
    )
    contents: list[Any] = []
    for turn in range(turns):
        contents.append(types.Content(role="user", parts=[types.Part(text=f"question {turn}")]))
        while True:
            reply = await client.aio.models.generate_content(
                model="gemini-2.5-flash", contents=contents, config=config
            )
            contents.append(reply.candidates[0].content)  # type: ignore[index]
            calls = reply.function_calls
            if not calls:
                break
            responses = [
                types.Part(
                    function_response=types.FunctionResponse(
                        id=c.id, name=c.name, response={"output": lookup(**c.args)}
                    )
                )  # type: ignore[arg-type]
                for c in calls
            ]
            contents.append(types.Content(role="user", parts=responses))
    return time.process_time() - start


async def plain_anthropic_loop(url: str, turns: int) -> float:
    import anthropic

    start = time.process_time()  # both loops time client creation too
    client = anthropic.AsyncAnthropic(api_key="test-key", base_url=url, max_retries=0)
    tools = [{"name": "lookup", "description": "Look up a key.", "input_schema": TOOL_SCHEMA}]
    messages: list[dict[str, Any]] = []
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


async def llmproc_loop(provider: str, url: str, turns: int) -> float:
    from llmproc import LLMProgram

    model, base_url = {
        "anthropic": (MODEL, url),
        "openai": ("gpt-4o-mini", f"{url}/v1"),
        "openai_responses": ("o4-mini", f"{url}/v1"),
        "gemini": ("gemini-2.5-flash", url),
    }[provider]
    api = "responses" if provider == "openai_responses" else "auto"
    program = LLMProgram(
        model_name=model,
        provider=provider.removesuffix("_responses"),
        system_prompt=SYSTEM,
        parameters={"max_tokens": 1024},
        base_url=base_url,
        max_retries=0,
        api=api,
    )
    program.add_tool(lookup)
    start = time.process_time()  # llmproc creates its client on the first run
    process = await program.start()
    for turn in range(turns):
        result = await process.run(f"question {turn}")
        assert result.tool_calls and result.text.startswith("done"), result
    return time.process_time() - start


PLAIN_LOOPS = {
    "anthropic": plain_anthropic_loop,
    "openai": plain_openai_loop,
    "openai_responses": plain_openai_responses_loop,
    "gemini": plain_gemini_loop,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("turns", nargs="*", type=int, default=[50, 300])
    parser.add_argument("--provider", choices=sorted(PLAIN_LOOPS), action="append")
    args = parser.parse_args()
    for variable in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"):
        os.environ[variable] = "test-key"
    server = subprocess.Popen(
        [sys.executable, "-m", "fake_provider"],
        cwd=ROOT / "tests",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()  # type: ignore[union-attr]
        print(f"{'provider':>16} {'turns':>6} {'plain SDK ms/turn':>18} {'llmproc ms/turn':>16} {'ratio':>7}")
        for provider in args.provider or sorted(PLAIN_LOOPS):
            for turns in args.turns:
                plain, ours = [], []
                repeats = 5 if turns <= 100 else 2  # short runs are noisy: alternate, keep the best
                for _ in range(repeats):
                    plain.append(asyncio.run(PLAIN_LOOPS[provider](url, turns)))
                    ours.append(asyncio.run(llmproc_loop(provider, url, turns)))
                base, mine = min(plain) / turns * 1000, min(ours) / turns * 1000
                print(
                    f"{provider:>16} {turns:>6} {base:>18.2f} {mine:>16.2f} {mine / base:>7.2f}", flush=True
                )
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
