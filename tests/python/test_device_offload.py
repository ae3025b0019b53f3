"""normd --device=cuda:N: a server refuses a device it cannot use, saying why (run on
every build), and, with a GPU (label cuda, in test_cuda.py's company), a server that
runs every Normalize and Ingest on the device answers with the CPU server's bits."""
import subprocess

import numpy as np
import pytest

import normd
from normd import local

from conftest import NORMD_BIN, NormdProcess

HAS_GPU = local.available() and local.cuda_available()


def start_failure(tmp_path, *flags):
    result = subprocess.run([NORMD_BIN, "--listen=127.0.0.1:0", f"--data_dir={tmp_path}",
                             "--region_socket=off", *flags],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0, result
    return result.stderr


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU that normd can use")
def test_device_without_a_usable_gpu_refuses_to_start(tmp_path):
    message = start_failure(tmp_path, "--device=cuda:0")
    assert "FAILED_PRECONDITION" in message and "--device=cuda:0" in message, message
    assert "no CUDA device" in message or "CUDA path" in message, message


def test_device_spelling_is_checked(tmp_path):
    message = start_failure(tmp_path, "--device=gpu0")
    assert "INVALID_ARGUMENT" in message and "cuda:N" in message and "gpu0" in message, message


@pytest.mark.skipif(not HAS_GPU, reason="no GPU that normd's CUDA path can use here")
def test_offloaded_server_answers_with_the_cpus_bits(tmp_path):
    on_device = NormdProcess(tmp_path / "gpu", flags=[
        "--device=cuda:0", "--device_normalize_min_bytes=0", "--device_fit_min_bytes=0"]).start()
    on_cpu = NormdProcess(tmp_path / "cpu").start()
    try:
        rng = np.random.default_rng(5)
        batches = [rng.normal(50.0, 4.0, (8, 3, 64, 64)).astype(np.float32) for _ in range(3)]
        x = rng.normal(50.0, 4.0, (16, 3, 64, 64)).astype(np.float32)
        results = []
        for server in (on_device, on_cpu):
            with normd.Client(server.address, timeout=120) as client:
                # "same": summaries made here, so both servers hold the same statistics and
                # their Normalize must give the same bits. "raw": batches reduced by the
                # server, on the device on one side.
                for name, local_fit in (("same", True), ("raw", False)):
                    client.create_dataset(name, layout="NCHW", channels=3)
                    client.fit(name, batches, local=local_fit)
                    client.freeze(name)
                outputs = [client.zscore(x, "same", output_dtype=out)
                           for out in ("float32", "float64", "float16")]
                outputs.append(client.minmax(x, "same", low=-1.0, high=1.0, clip=True))
                results.append((client.stats("raw", version=1), outputs))
        (gpu_stats, gpu_outputs), (cpu_stats, cpu_outputs) = results
        for got, want in zip(gpu_outputs, cpu_outputs):
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
        assert list(gpu_stats.count) == list(cpu_stats.count)
        np.testing.assert_allclose(gpu_stats.mean, cpu_stats.mean, rtol=1e-15)
        np.testing.assert_allclose(gpu_stats.variance, cpu_stats.variance, rtol=1e-14)
    finally:
        on_device.stop()
        on_cpu.stop()
