"""Python client for normd, the normalisation-statistics service.

    import normd
    with normd.Client("127.0.0.1:50051") as client:
        client.create_dataset("cifar", layout="NCHW", channels=3)
        client.fit("cifar", train_batches)            # numpy arrays or torch tensors
        client.freeze("cifar")
        z = client.zscore(val_batch, "cifar")

        # Same host: arrays in shared memory never cross the socket.
        pool = client.shared_pool(64 << 20)
        x, y = pool.array(val_batch.shape), pool.array(val_batch.shape)
        x[...] = val_batch
        client.zscore(x, "cifar", out=y)

        # In process, with normd's own kernels (where its native module is built):
        s = normd.moments(batch, layout="NCHW")   # exact moments; fit() sends these
        normalize = client.normalizer("cifar")    # the frozen version, fetched once
        y = normalize(val_batch, out=y)            # the server's bits, no round trip
"""
from normd.client import Client, FitResult, Statistics
from normd.shared_memory import SharedBuffer, SharedPool
from normd.local import Normalizer, Summary, moments
from normd.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NormdError,
                          NotFound, PermissionDenied, ResourceExhausted, Unauthenticated,
                          Unavailable)

__all__ = ["Client", "FitResult", "Statistics", "SharedBuffer", "SharedPool", "Normalizer",
           "Summary", "moments", "NormdError", "InvalidArgument", "NotFound",
           "AlreadyExists", "FailedPrecondition", "ResourceExhausted", "Unavailable",
           "Unauthenticated", "PermissionDenied"]
