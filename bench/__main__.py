"""Run every benchmark: python -m bench  (numbers recorded in docs/benchmarks.md).

engine (vs a bare numpy loop and PyTorch), seeds (batched seeds vs one seed and vs
K processes, and the bare loop's floor under both), records (a record's encoding),
concurrency (thread vs process executor), stream (load: runs x viewers), page
(redraws in Chromium).
"""

import platform
import time

from bench import concurrency, engine, page, records, seeds, stream

if __name__ == "__main__":
    print(f"synthgrad benchmarks, {time.strftime('%Y-%m-%d %H:%M')}, {platform.platform()}")
    for name, module in (
        ("engine", engine),
        ("seeds", seeds),
        ("records", records),
        ("concurrency", concurrency),
        ("stream", stream),
        ("page", page),
    ):
        print(f"\n===== {name} =====", flush=True)
        module.main([])
