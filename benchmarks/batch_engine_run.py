"""One batch transform through the engine, for ``batch.py``: what the job's worker process does,
with the executor chosen here (the CLI has no executor option).

    python batch_engine_run.py --model bench --input IN --output OUT --executor local|ray
        [--workers N] [--address ray://…]

Uses the MODELYARD_HOME of the environment. With ``--executor ray`` and no address it starts
a local Ray first (``ray.init()``, timed apart) and shuts it down at the end (timed too), so the
report splits Ray's fixed cost from the transform. Prints one JSON line: the counts and times.
"""

from __future__ import annotations

import argparse
import json
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--address", default=None)
    parser.add_argument("--job", default="bench-engine")
    args = parser.parse_args()

    began = time.perf_counter()
    from modelyard.batch.coordinator import transform
    from modelyard.batch.model import ModelSource
    from modelyard.bootstrap import build
    from modelyard.domain import ModelRef, ModelSpec
    from modelyard.domain.batch import TransformRequest

    platform = build()
    try:
        version = platform.registry.get_version(ModelRef.parse(args.model))
        spec = ModelSpec.from_version(version)
        scratch = platform.settings.home / "tmp" / "batch"
        source = ModelSource(artifacts=platform.artifacts, spec=spec, scratch=str(scratch))
    finally:
        platform.close()
    request = TransformRequest(
        model=args.model, input=args.input, output=args.output, workers=args.workers
    )
    times: dict[str, float] = {"setup_s": time.perf_counter() - began}
    executor = None
    if args.executor == "ray":
        import ray

        from modelyard.batch.ray_executor import RayExecutor

        start = time.perf_counter()
        ray.init(address=args.address, include_dashboard=False, logging_level="warning")
        times["ray_init_s"] = time.perf_counter() - start
        executor = RayExecutor(workers=args.workers)
    start = time.perf_counter()
    counts = transform(request, source, job=args.job, executor=executor, stop=threading.Event())
    times["transform_s"] = time.perf_counter() - start
    if args.executor == "ray":
        start = time.perf_counter()
        ray.shutdown()
        times["ray_shutdown_s"] = time.perf_counter() - start
    times["total_s"] = time.perf_counter() - began
    print(json.dumps({"executor": args.executor, "counts": counts.to_metrics(), **times}))


if __name__ == "__main__":
    main()
