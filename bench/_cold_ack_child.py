"""One cold start of the callback: import the handler and answer the first signed Approve click.

Run by bench/callback_ack.py in a fresh interpreter with the local stand-ins' environment and
PYTHONPATH=lambdas:. (as the function's code sits at the root of its bundle).
Prints the in-process milliseconds (import, first request) as JSON on the last line.
"""

from __future__ import annotations

import json
import os
import time

started = time.perf_counter()

from approvals.handlers import callback  # noqa: E402

imported = time.perf_counter()
event = json.loads(os.environ["BENCH_EVENT"])


class Context:  # the few LambdaContext fields the handler reads
    function_name = "callback"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:callback"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


response = callback.handler(event, Context())
answered = time.perf_counter()
acked_at = time.time()
assert response["statusCode"] == 200, response
print(
    json.dumps(
        {
            "import_ms": (imported - started) * 1000,
            "first_request_ms": (answered - imported) * 1000,
            "acked_at": acked_at,
        }
    )
)
