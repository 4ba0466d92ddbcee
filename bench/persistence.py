"""Cost of persisting one turn as the history grows: the server's SQLite store against
rewriting a whole snapshot file (the baseline, measured in the same run).

For each history length (100, 1,000, 10,000 messages) a scripted process gets that history,
is stored once, then runs turns; after each turn the time to record and commit what changed
is measured (`Persisted.record` + `SqliteStore.commit`: one transaction, fsync included), next
to `process.save()` of the whole snapshot. The store's cost must not grow with the history:
the script prints each length's median against the shortest's (goal: about 1.0).

    python bench/persistence.py            # 100, 1,000, 10,000 messages, 30 turns each
    python bench/persistence.py --turns 10
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmproc import LLMProcess, LLMProgram
from llmproc.messages import Message, TextBlock
from llmproc.store import Persisted, SqliteStore

LENGTHS = (100, 1_000, 10_000)
TEXT = "A message of about the size a chat turn has, repeated to fill a long conversation. " * 4


def history(length: int) -> list[Message]:
    return [
        Message("user" if i % 2 == 0 else "assistant", (TextBlock(f"{i}: {TEXT}"),)) for i in range(length)
    ]


async def measure(length: int, turns: int, workdir: Path) -> tuple[float, float]:
    """Median seconds per turn: (store commit, whole-snapshot rewrite)."""
    rewrites: list[float] = []

    def rewrite(process: LLMProcess) -> None:
        started = time.perf_counter()
        process.save(workdir / f"snapshot-{length}.json")
        rewrites.append(time.perf_counter() - started)

    commit = await measure_store(SqliteStore(workdir / f"state-{length}.db"), length, turns, rewrite)
    return commit, statistics.median(rewrites)


async def measure_store(
    store: Any, length: int, turns: int, after: Callable[[LLMProcess], None] | None = None
) -> float:
    """Median seconds to record and commit one turn of a process with `length` messages, under
    the process's lease as a server commits it (bench/scale.py measures PostgreSQL with it)."""
    program = LLMProgram(model_name="bench", provider="scripted")  # echoes each message
    process = LLMProcess(program, history=history(length))
    persisted = Persisted()
    first = persisted.record(process, program="bench", owner=None, boot="bench", turns=0)
    persisted.committed(first, await store.commit(first))
    lease = await store.acquire(process.id, "bench", 600)
    commits = []
    for turn in range(turns):
        await process.run(f"turn {turn}: {TEXT}")
        started = time.perf_counter()
        record = persisted.record(
            process, program="bench", owner=None, boot="bench", turns=turn + 1, token=lease.token
        )
        persisted.committed(record, await store.commit(record))
        commits.append(time.perf_counter() - started)
        if after is not None:
            after(process)
    await store.close()
    return statistics.median(commits)


async def main() -> None:
    layout = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=layout)
    parser.add_argument("--turns", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        results = {n: await measure(n, args.turns, Path(directory)) for n in LENGTHS}
    base_commit, base_rewrite = results[LENGTHS[0]]
    print(f"{'messages':>9}  {'store commit':>13}  {'vs 100':>7}  {'snapshot rewrite':>17}  {'vs 100':>7}")
    for length, (commit, rewrite) in results.items():
        print(
            f"{length:>9,}  {commit * 1000:>10.2f} ms  {commit / base_commit:>6.2f}x"
            f"  {rewrite * 1000:>14.2f} ms  {rewrite / base_rewrite:>6.2f}x"
        )


if __name__ == "__main__":
    asyncio.run(main())
