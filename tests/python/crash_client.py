"""One training job for the crash tests: fits a deterministic sequence of batches
into a dataset through normd.Client.fit (exactly once, resending after failures)
and prints its FitResult as JSON. Run as a separate process by test_crash_recovery."""
import dataclasses
import json
import sys

import numpy as np

import normd


def job_batches(seed: int, count: int, shape):
    """Drifting batches of varying size; the same for a given seed in every run."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        rows = int(rng.integers(3, 40))
        yield rng.normal(1e4 + k, 1 + k % 5, (rows, *shape)).astype(np.float32)


def main(address, dataset, writer, seed, count, shape, stream_bytes, summaries_per_stream):
    # Summaries where the native module is built (fit's default), else batches.
    with normd.Client(address, timeout=60) as client:
        result = client.fit(dataset, job_batches(seed, count, shape), writer_id=writer,
                            stream_bytes=stream_bytes, summaries_per_stream=summaries_per_stream,
                            retry_for=240)
    print(json.dumps(dataclasses.asdict(result)))


if __name__ == "__main__":
    address, dataset, writer, seed, count, shape, stream_bytes, summaries = sys.argv[1:]
    main(address, dataset, writer, int(seed), int(count),
         tuple(int(d) for d in shape.split("x")), int(stream_bytes), int(summaries))
