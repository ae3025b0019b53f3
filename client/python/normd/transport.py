"""The connection to normd, written once for the whole client: the channel (TLS, a
token, gRPC's reconnect backoff), a call with the client's timeout and metadata, its
failure as a NormdError naming the address, and the one resend loop (exponential
backoff with full jitter) that a fit and its spec lookup wait for the server with, as
google-api-core's Retry does for Google's clients."""
import logging
import random
import time
from typing import Optional

import grpc

from normd import errors
from normd.v1 import normd_pb2 as pb
from normd.v1 import normd_pb2_grpc

_log = logging.getLogger("normd")

# Worth resending: the server was unreachable or restarting, a concurrent resend
# overtook the stream, or the server cancelled it while shutting down (a cancel of
# our own raises the iterable's exception instead). Exactly-once makes each safe.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED)


class Backoff:
    """Exponential backoff with full jitter between resends: a server that is up but
    refusing writes (a full disk answers UNAVAILABLE) is not hammered, and writers
    refused together do not come back in lockstep."""

    def __init__(self, first: float = 0.05, cap: float = 2.0):
        self._ceiling = first
        self._cap = cap

    def wait(self, deadline: float) -> None:
        delay = random.uniform(0.0, self._ceiling)
        self._ceiling = min(self._cap, 2.0 * self._ceiling)
        time.sleep(max(0.0, min(delay, deadline - time.monotonic())))


class Transport:
    """One channel to normd and the calls made over it."""

    def __init__(self, target: str, *, timeout: Optional[float], max_message_bytes: int,
                 channel: Optional[grpc.Channel], token: Optional[str], ca_file: Optional[str],
                 cert_file: Optional[str], key_file: Optional[str],
                 load_balancing: Optional[str]):
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            # After a server restart, reconnect within a second or two rather than
            # gRPC's default backoff of up to two minutes. Not min_reconnect_backoff_ms:
            # gRPC also takes it as the connect timeout, and at 100 ms a server slower
            # than that to answer the handshake (loaded, or far away) was unreachable.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        if load_balancing is not None:
            options.append(("grpc.lb_policy_name", load_balancing))
        if channel is None and ca_file is not None:
            if (cert_file is None) != (key_file is None):
                raise ValueError("mutual TLS needs both cert_file and key_file")
            read = lambda path: open(path, "rb").read() if path else None  # noqa: E731
            credentials = grpc.ssl_channel_credentials(
                root_certificates=read(ca_file), private_key=read(key_file),
                certificate_chain=read(cert_file))
            channel = grpc.secure_channel(target, credentials, options=options)
        elif cert_file is not None:
            raise ValueError("a client certificate needs TLS: give ca_file too")
        self.target = target
        self.timeout = timeout
        self.metadata = (("authorization", f"Bearer {token}"),) if token else None
        self.channel = channel or grpc.insecure_channel(target, options=options)
        self.stub = normd_pb2_grpc.NormdStub(self.channel)
        # The tensor RPCs carry bytes the client encodes and decodes itself (wire.py):
        # the payload is copied once into a request and viewed in place in a reply.
        self.normalize_bytes = self.channel.unary_unary("/normd.v1.Normd/Normalize")
        self.denormalize_bytes = self.channel.unary_unary("/normd.v1.Normd/Denormalize")
        self.ingest_bytes = self.channel.stream_unary(
            "/normd.v1.Normd/Ingest", response_deserializer=pb.IngestResponse.FromString)

    def close(self) -> None:
        self.channel.close()

    def call(self, method, request):
        """`method(request)` with the client's timeout and metadata."""
        try:
            return method(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as error:
            raise self.error(error) from None

    def error(self, error: grpc.RpcError) -> errors.NormdError:
        return errors.from_rpc_error(error, target=self.target)

    def waiting_timeout(self, retrying: bool, deadline: float) -> Optional[float]:
        """A resend's deadline: the time left to the whole wait (it waits for the
        server to be ready); a first attempt's, the client's timeout."""
        return max(1.0, deadline - time.monotonic()) if retrying else self.timeout

    def with_resends(self, attempt, deadline: float, what: str = "fit's retry_for"):
        """The one resend loop: `attempt(retrying)` until it returns, fails in a way a
        resend cannot mend, or `deadline` passes, with Backoff between tries; returns
        (its value, the attempts that failed). Each wait is logged (logger "normd"),
        and when the wait runs out the error names the address and keeps the failure
        that kept the server away."""
        backoff, failures, cause = Backoff(), 0, None
        while True:
            try:
                return attempt(failures > 0), failures
            except grpc.RpcError as error:
                left = deadline - time.monotonic()
                if error.code() in RETRYABLE and left > 0:
                    failures, cause = failures + 1, error
                    _log.warning("waiting for normd at %s (up to %.0f s more, %s): %s: %s",
                                 self.target, left, what, error.code().name, error.details())
                    backoff.wait(deadline)
                    continue
                if cause is not None and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise errors.Unavailable(grpc.StatusCode.UNAVAILABLE, (
                        f"normd at {self.target} did not come back before {what} ran "
                        f"out; the last failure: {cause.code().name}: {cause.details()}")) from None
                raise self.error(error) from None
