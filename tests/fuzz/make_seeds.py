"""Writes the fuzzers' seed corpora: OUT_DIR/requests holds valid requests of every
kind for request_fuzzer, so the mutations start from messages that reach deep into
validation and the kernels; OUT_DIR/npy holds valid .npy files for npy_fuzzer.
Usage: make_seeds.py OUT_DIR (with the build's python/ on PYTHONPATH)."""
import io
import sys
from pathlib import Path

import numpy as np

from normd.v1 import normd_pb2 as pb

CREATE, INGEST, NORMALIZE, UNARY = 0, 1, 2, 3
# The unary methods the fuzzer's UNARY kind reaches, by the byte after the kind.
(GET_DATASET, LIST_DATASETS, FREEZE, GET_STATS, COMPARE, PIN_VERSION, LIST_REGIONS,
 REGISTER_REGION, UNREGISTER_REGION) = range(9)


def tensor(shape, dtype=np.float32):
    values = (np.arange(int(np.prod(shape))) % 13 - 6).astype(dtype).reshape(shape)
    wire = {np.float32: pb.DTYPE_FLOAT32, np.float64: pb.DTYPE_FLOAT64,
            np.float16: pb.DTYPE_FLOAT16, np.uint8: pb.DTYPE_UINT8}[dtype]
    return pb.Tensor(shape=list(shape), dtype=wire, data=values.tobytes())


def seeds():
    yield CREATE, pb.CreateDatasetRequest(spec=pb.DatasetSpec(
        name="fuzz", layout=pb.LAYOUT_NCHW, channels=3, exact=pb.ExactAccumulator()))
    yield CREATE, pb.CreateDatasetRequest(spec=pb.DatasetSpec(
        name="fuzz-ra", layout=pb.LAYOUT_NC, channels=2,
        running_average=pb.RunningAverageAccumulator(momentum=0.5)))
    yield INGEST, pb.IngestRequest(dataset="nc", split=pb.SPLIT_TRAIN, batch=tensor((4, 3)),
                                   writer_id="w", sequence=1)
    yield INGEST, pb.IngestRequest(dataset="nhwc", split=pb.SPLIT_TEST,
                                   batch=tensor((2, 3, 3, 4), np.uint8))
    # Two batches of [1, 2, 3, 4] per channel, as summaries (sequences 2 and 3).
    summary = pb.MomentsSummary(count=[4] * 3, mean_hi=[2.5] * 3, mean_lo=[0.0] * 3,
                                m2_hi=[5.0] * 3, m2_lo=[0.0] * 3, min=[1.0] * 3, max=[4.0] * 3,
                                samples=4, batches=1, layout=pb.LAYOUT_NC)
    yield INGEST, pb.IngestRequest(dataset="nc", split=pb.SPLIT_TRAIN, writer_id="w",
                                   sequence=2,
                                   summaries=pb.MomentsSummaries(summaries=[summary] * 2))
    inputs = {"nc": tensor((4, 3)), "nchw": tensor((2, 3, 4, 4), np.float16),
              "nhwc": tensor((2, 3, 3, 4), np.uint8)}
    for dataset, x in inputs.items():
        yield NORMALIZE, pb.NormalizeRequest(dataset=dataset, input=x, zscore=pb.ZScore())
        yield NORMALIZE, pb.NormalizeRequest(dataset=dataset, input=x,
                                             minmax=pb.MinMax(high=2, clip=True),
                                             output_dtype=pb.DTYPE_BFLOAT16)
        yield NORMALIZE, pb.NormalizeRequest(dataset=dataset, input=x,
                                             batchnorm=pb.BatchNorm(eps=1e-3))
        yield NORMALIZE, pb.NormalizeRequest(dataset=dataset, input=x,
                                             batchnorm_training=pb.BatchNormTraining(),
                                             output_dtype=pb.DTYPE_FLOAT64)
        yield NORMALIZE, pb.NormalizeRequest(dataset=dataset, input=x,
                                             layernorm=pb.LayerNorm())
        yield NORMALIZE, pb.NormalizeRequest(dataset=dataset, input=x,
                                             groupnorm=pb.GroupNorm(num_groups=1))
    yield NORMALIZE, pb.NormalizeRequest(input=tensor((2, 6, 5)), layout=pb.LAYOUT_NCHW,
                                         groupnorm=pb.GroupNorm(num_groups=3, gamma=[1] * 6))
    yield NORMALIZE, pb.NormalizeRequest(input=tensor((2, 5, 6)), layout=pb.LAYOUT_NHWC,
                                         instancenorm=pb.InstanceNorm(eps=0.1))
    yield NORMALIZE, pb.NormalizeRequest(input=tensor((3, 4)), scale=pb.Scale(factor=0.5))
    yield NORMALIZE, pb.NormalizeRequest(dataset="nc", input=tensor((4, 3)),
                                         quantile=pb.Quantile(n_quantiles=11))
    unary = [
        (GET_DATASET, pb.GetDatasetRequest(name="nc")),
        (LIST_DATASETS, pb.ListDatasetsRequest()),
        (FREEZE, pb.FreezeRequest(dataset="nc")),
        (GET_STATS, pb.GetStatsRequest(dataset="nchw", split=pb.SPLIT_TRAIN,
                                       quantiles=[0.5, 0.9], histogram_bins=4)),
        (COMPARE, pb.CompareRequest(dataset="nc")),
        (PIN_VERSION, pb.PinVersionRequest(dataset="nc", version=1)),
        (LIST_REGIONS, pb.ListRegionsRequest()),
        (REGISTER_REGION, pb.RegisterRegionRequest(name="r", claim="0" * 32)),
        (UNREGISTER_REGION, pb.UnregisterRegionRequest(name="r")),
    ]
    for method, message in unary:
        yield UNARY, bytes([method]) + message.SerializeToString()


def npy_seeds():
    yield np.arange(12, dtype=np.float32).reshape(3, 4)
    yield np.ones((2, 3, 2, 2), np.float16)
    yield np.arange(5, dtype=np.uint8)
    yield np.float64(2.5)
    yield np.zeros((0, 3), np.float64)


def npy_file(array, version):
    out = io.BytesIO()
    np.lib.format.write_array(out, array, version=version)
    return out.getvalue()


def main(out_dir):
    requests = Path(out_dir) / "requests"
    requests.mkdir(parents=True, exist_ok=True)
    for i, (kind, message) in enumerate(seeds()):
        body = message if isinstance(message, bytes) else message.SerializeToString()
        (requests / f"seed-{i:02d}").write_bytes(bytes([kind]) + body)
    npy = Path(out_dir) / "npy"
    npy.mkdir(parents=True, exist_ok=True)
    for i, array in enumerate(npy_seeds()):
        for version in (1, 2):
            (npy / f"seed-{i:02d}-v{version}.npy").write_bytes(npy_file(array, (version, 0)))


if __name__ == "__main__":
    main(sys.argv[1])
