"""Exceptions for failed calls: each carries the gRPC status code and message."""
import grpc


class NormdError(Exception):
    """A call normd refused or could not serve. `code` is a grpc.StatusCode and
    `details` the server's message, which names what was expected and what came."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class InvalidArgument(NormdError):
    pass


class NotFound(NormdError):
    pass


class AlreadyExists(NormdError):
    pass


class FailedPrecondition(NormdError):
    pass


class ResourceExhausted(NormdError):
    pass


class Unavailable(NormdError):
    pass


class Unauthenticated(NormdError):
    """No bearer token, a malformed one, or one the server does not know."""


class PermissionDenied(NormdError):
    """The token's role does not allow the call."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def from_rpc_error(error: grpc.RpcError, target: str = "") -> NormdError:
    """The exception for a failed call; an UNAVAILABLE one names `target`, the address
    that could not be reached."""
    code = error.code()
    details = error.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE and target:
        details = f"normd at {target}: {details}"
    return _BY_CODE.get(code, NormdError)(code, details)


def from_status(code_name: str, details: str) -> NormdError:
    """The exception for a status of normd's native module ("INVALID_ARGUMENT", ...)."""
    code = getattr(grpc.StatusCode, code_name, grpc.StatusCode.UNKNOWN)
    return _BY_CODE.get(code, NormdError)(code, details)
