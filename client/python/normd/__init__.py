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
"""
from normd.client import Client, FitResult, Statistics
from normd.shared_memory import SharedBuffer, SharedPool
from normd.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NormdError,
                          NotFound, PermissionDenied, ResourceExhausted, Unauthenticated,
                          Unavailable)

__all__ = ["Client", "FitResult", "Statistics", "SharedBuffer", "SharedPool", "NormdError", "InvalidArgument", "NotFound",
           "AlreadyExists", "FailedPrecondition", "ResourceExhausted", "Unavailable",
           "Unauthenticated", "PermissionDenied"]
