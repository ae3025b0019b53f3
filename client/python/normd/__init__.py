"""Python client for normd, the normalisation-statistics service.

    import normd
    with normd.Client("127.0.0.1:50051") as client:
        client.create_dataset("cifar", layout="NCHW", channels=3)
        client.fit("cifar", train_batches)            # numpy arrays or torch tensors
        client.freeze("cifar")
        z = client.zscore(val_batch, "cifar")
"""
from normd.client import Client, FitResult, Statistics
from normd.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NormdError,
                          NotFound, PermissionDenied, ResourceExhausted, Unauthenticated,
                          Unavailable)

__all__ = ["Client", "FitResult", "Statistics", "NormdError", "InvalidArgument", "NotFound",
           "AlreadyExists", "FailedPrecondition", "ResourceExhausted", "Unavailable",
           "Unauthenticated", "PermissionDenied"]
