"""One cold start from a bundle, as Lambda runs it: ``python3.X -B -I bench/_bundle_child.py BUNDLE WHAT``.

-I leaves PYTHONPATH and the script's directory out of ``sys.path``, so the bundle goes first by hand,
where Lambda puts ``/var/task`` (ahead of the runtime's own boto3). WHAT is ``ack`` (the callback answers
the signed click in BENCH_EVENT: the script given third, bench/_cold_ack_child.py, run as is) or a
module to import (cold import only). Prints JSON on the last line with ``acked_at``, the moment the work
was done; with BENCH_USAGE=1 it prints instead what the work loaded from the bundle (module count, bytes).
"""

import sys

bundle = sys.argv[1]
sys.path.insert(0, bundle)

if sys.argv[2] == "ack":
    import runpy

    runpy.run_path(sys.argv[3], run_name="__main__")
else:
    import importlib
    import json
    import time

    importlib.import_module(sys.argv[2])
    print(json.dumps({"acked_at": time.time()}))

import os  # noqa: E402  (after the timed work)

if os.environ.get("BENCH_USAGE") == "1":
    import json

    files = set()
    for module in list(sys.modules.values()):
        for attribute in ("__file__", "__cached__"):
            path = getattr(module, attribute, None)
            if isinstance(path, str) and path.startswith(bundle + os.sep) and os.path.isfile(path):
                files.add(path)
    top_levels = {os.path.relpath(path, bundle).split(os.sep)[0] for path in files}
    print(
        json.dumps(
            {
                "modules": sum(path.endswith((".py", ".so")) for path in files),
                "bytes": sum(os.path.getsize(path) for path in files),
                "top_levels": sorted(top_levels),
            }
        )
    )
