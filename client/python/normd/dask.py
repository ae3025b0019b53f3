"""Fit a normd dataset from a Dask array or DataFrame, one task per block, exactly once.

    import dask.array as da
    import normd.dask
    x = da.from_zarr("train.zarr")                      # [N, C, H, W], chunked along N
    result = normd.dask.fit("normd:50051", "imagenet", x, job_id="imagenet-epoch0")

Dask schedules and retries; normd makes retries harmless. Block i fits as writer
"{job_id}-{i}" from sequence 1, so a block that Dask runs again (its worker died after
fitting it, or the whole job is resubmitted with the same job_id) is acknowledged as
duplicates and never counted twice. Each task reduces its block where it runs (the
native module's exact summary, or the batch itself without it) and sends that.

Dask is imported here only: `import normd` works without it.
"""
import re
import uuid
from dataclasses import dataclass, field
from typing import Optional

import dask
import numpy as np

from normd.client import Client, FitResult

_JOB_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


@dataclass
class DaskFitResult:
    """The blocks' FitResults added up (duplicate_batches counts the blocks that had
    been fitted before: re-run by Dask, or by a resubmitted job)."""
    job_id: str
    blocks: int = 0
    batches: int = 0
    samples: int = 0
    values: int = 0
    skipped_nonfinite: int = 0
    duplicate_batches: int = 0
    per_block: list = field(default_factory=list, repr=False)


def _fit_block(address: str, dataset: str, block, writer_id: str, split: str,
               client_options: dict) -> FitResult:
    """One task: fits one block as its own writer. A module-level function, so that
    Dask's distributed workers can unpickle it."""
    values = block.to_numpy(dtype=np.float64) if hasattr(block, "to_numpy") else block
    with Client(address, **client_options) as client:
        return client.fit(dataset, [np.ascontiguousarray(values)], split, writer_id=writer_id)


def fit_tasks(address: str, dataset: str, data, *, split: str = "train",
              job_id: Optional[str] = None, **client_options) -> list:
    """The per-block tasks of fit() as dask.delayed objects, in block order, for a
    caller that schedules them itself (client.compute(...)); each returns the block's
    FitResult. `data`: a dask array chunked along its first (sample) axis only, or a
    dask DataFrame whose columns are the channels (NC datasets). The dataset must
    exist. `client_options` go to normd.Client in each task (token, TLS files)."""
    if job_id is None:
        job_id = uuid.uuid4().hex
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"job_id must be 1 to 100 characters of [A-Za-z0-9._-], not starting "
                         f"with '.', got {job_id!r}")
    if hasattr(data, "to_delayed") and hasattr(data, "columns"):  # a DataFrame
        blocks = list(data.to_delayed())
    elif hasattr(data, "to_delayed") and hasattr(data, "chunks"):  # an array
        # A batch holds every channel: only the sample axis may be split.
        whole = {axis: -1 for axis in range(1, data.ndim)}
        blocks = list(data.rechunk(whole).to_delayed().ravel())
    else:
        raise TypeError(f"data must be a dask array or DataFrame, got {type(data).__name__}")
    fit_block = dask.delayed(_fit_block, pure=False)
    return [fit_block(address, dataset, block, f"{job_id}-{i}", split, client_options,
                      dask_key_name=f"normd-fit-{job_id}-{i}")
            for i, block in enumerate(blocks)]


def fit(address: str, dataset: str, data, *, split: str = "train",
        job_id: Optional[str] = None, **client_options) -> DaskFitResult:
    """Fits every block of `data` into `dataset` on the active Dask scheduler (a
    distributed Client if one is set up) and adds up what each applied. Pass a job_id
    to make a resubmission of the same job count nothing twice."""
    job_id = job_id or uuid.uuid4().hex
    results = dask.compute(*fit_tasks(address, dataset, data, split=split, job_id=job_id,
                                      **client_options))
    return summarise(job_id, results)


def summarise(job_id: str, results) -> DaskFitResult:
    """Adds up the blocks' FitResults (fit_tasks' results, computed)."""
    total = DaskFitResult(job_id=job_id, per_block=list(results))
    for result in results:
        total.blocks += 1
        total.batches += result.batches
        total.samples += result.samples
        total.values += result.values
        total.skipped_nonfinite += result.skipped_nonfinite
        total.duplicate_batches += result.duplicate_batches
    return total
