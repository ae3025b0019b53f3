"""normd.dask: a real Dask LocalCluster (worker processes) fitting through a real normd.
Oracle: the same blocks fitted by one process, and exact arithmetic for the counts."""
import os
import signal

import numpy as np
import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
import dask.array as da  # noqa: E402
from normd import dask as normd_dask  # noqa: E402
from conftest import PYTHON_PACKAGE_DIR  # noqa: E402


@pytest.fixture(scope="module")
def dask_client():
    # Worker processes import normd and this module (gated_block) from here.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [PYTHON_PACKAGE_DIR, os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                       dashboard_address=None, silence_logs=40)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def images(seed=0, blocks=8):
    state = da.random.RandomState(seed)
    return state.normal(loc=3.0, scale=2.0, size=(8 * blocks, 3, 6, 5), chunks=(8, 3, 6, 5))


def assert_same_statistics(got, expected):
    assert np.array_equal(got.count, expected.count)
    assert (got.batches, got.samples) == (expected.batches, expected.samples)
    np.testing.assert_allclose(got.mean, expected.mean, rtol=1e-12)
    np.testing.assert_allclose(got.variance, expected.variance, rtol=1e-12)
    assert np.array_equal(got.min, expected.min) and np.array_equal(got.max, expected.max)


def test_a_dask_fit_equals_one_process_and_a_resubmission_counts_nothing(
        dask_client, client, normd):
    x = images()
    client.create_dataset("by-dask", layout="NCHW", channels=3)
    client.create_dataset("by-hand", layout="NCHW", channels=3)
    result = normd_dask.fit(normd.address, "by-dask", x, job_id="epoch0")
    assert (result.blocks, result.batches, result.duplicate_batches) == (8, 8, 0)
    whole = x.compute()
    client.fit("by-hand", [whole[i:i + 8] for i in range(0, len(whole), 8)])
    assert_same_statistics(client.stats("by-dask"), client.stats("by-hand"))
    assert client.stats("by-dask").count[0] == whole[:, 0].size

    again = normd_dask.fit(normd.address, "by-dask", x, job_id="epoch0")
    assert (again.batches, again.duplicate_batches) == (0, 8)
    assert_same_statistics(client.stats("by-dask"), client.stats("by-hand"))


def test_a_dask_dataframe_fits_its_columns_as_channels(dask_client, client, normd):
    import dask.dataframe as dd
    import pandas as pd
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"age": rng.integers(18, 90, 500).astype(float),
                          "income": rng.lognormal(10, 1, 500), "score": rng.normal(0, 1, 500)})
    client.create_dataset("tabular", layout="NC", channels=3)
    result = normd_dask.fit(normd.address, "tabular", dd.from_pandas(frame, npartitions=7),
                            job_id="tab")
    assert result.blocks == 7 and result.samples == 500
    stats = client.stats("tabular")
    values = frame.to_numpy()
    np.testing.assert_allclose(stats.mean, values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.variance, values.var(axis=0), rtol=1e-12)


def test_bad_arguments_are_refused_before_anything_runs(normd):
    with pytest.raises(ValueError, match="job_id must be"):
        normd_dask.fit(normd.address, "x", images(), job_id="no/slashes")
    with pytest.raises(TypeError, match="dask array or DataFrame"):
        normd_dask.fit(normd.address, "x", np.zeros((4, 3)))


def gated_block(seed, gate):
    """A block whose computation waits for the test's go-ahead: the pass is certainly
    unfinished when a worker dies."""
    distributed.Event(gate).wait()
    return np.random.default_rng(seed).normal(size=(8, 3, 6, 5))


def test_a_worker_killed_mid_pass_changes_nothing(dask_client, client, normd):
    free = images(seed=1, blocks=9)
    gated = da.from_delayed(dask.delayed(gated_block)(99, "go"), shape=(8, 3, 6, 5),
                            dtype=np.float64)
    x = da.concatenate([free, gated])
    client.create_dataset("killed", layout="NCHW", channels=3)
    tasks = normd_dask.fit_tasks(normd.address, "killed", x, job_id="kill")
    futures = dask_client.compute(tasks)
    distributed.wait(futures[:-1])  # every free block fitted; the last one waits
    # A worker that holds fitted blocks' results dies: Dask runs those blocks again.
    holders = dask_client.who_has(futures[:-1])
    victim = next(iter(holders.values()))[0]
    pid = dask_client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    distributed.Event("go", client=dask_client).set()
    results = normd_dask.summarise("kill", dask_client.gather(futures))
    assert results.blocks == 10
    assert results.batches + results.duplicate_batches == 10
    assert results.duplicate_batches >= 1  # blocks run twice were recognised as such

    client.create_dataset("once", layout="NCHW", channels=3)
    whole = x.compute()
    client.fit("once", [whole[i:i + 8] for i in range(0, len(whole), 8)])
    assert_same_statistics(client.stats("killed"), client.stats("once"))
