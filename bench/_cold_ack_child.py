"""One cold start of the callback: import the handler and answer the first signed Approve click.

Run by bench/callback_ack.py in a fresh interpreter with the local stand-ins' environment.
Prints the in-process milliseconds (import, first request) as JSON on the last line.
"""

from __future__ import annotations

import json
import os
import sys
import time

started = time.perf_counter()
sys.path[:0] = ["lambdas", "."]

from approvals.handlers import callback  # noqa: E402

imported = time.perf_counter()
event = json.loads(os.environ["BENCH_EVENT"])
context_cls = __import__("sandbox.apigw", fromlist=["LambdaContext"]).LambdaContext
response = callback.handler(event, context_cls("callback", timeout_seconds=10))
answered = time.perf_counter()
assert response["statusCode"] == 200, response
print(json.dumps({"import_ms": (imported - started) * 1000, "first_request_ms": (answered - imported) * 1000}))
