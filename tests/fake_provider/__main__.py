"""`python -m fake_provider [--latency S]`: serve until stdin closes; prints the URL first.

Benchmarks run the fake server in its own process so that its CPU time is not
counted as the client's.
"""

from __future__ import annotations

import argparse
import sys

from .server import FakeProviderServer

parser = argparse.ArgumentParser()
parser.add_argument("--latency", type=float, default=0.0)
args = parser.parse_args()
with FakeProviderServer(latency=args.latency) as server:
    print(server.url, flush=True)
    sys.stdin.read()
