"""Client.fit's machinery: batches (or their local summaries) framed as Ingest
requests, sent in streams the server commits one at a time, each kept until it is
acknowledged and resent through the transport's one resend loop, exactly once by the
writer's sequence numbers."""
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import grpc

from normd import errors, tensors, wire
from normd import local as _local
from normd.transport import Transport
from normd.v1 import normd_pb2 as pb


def _weighted(item):
    """(batch, weights or None) of one item of fit's iterable."""
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ValueError(f"a fit item is a batch or a (batch, weights) pair, got a tuple of "
                             f"{len(item)}")
        return item
    return item, None


_END = object()


_END = object()


@dataclass
class FitResult:
    """What a fit() applied. Counts exclude duplicates: batches the server had
    already committed for this writer, acknowledged and not applied again."""
    writer_id: str
    writer_sequence: int = 0    # the writer's last committed sequence
    batches: int = 0
    samples: int = 0
    values: int = 0
    skipped_nonfinite: int = 0
    duplicate_batches: int = 0
    streams: int = 0
    retries: int = 0            # streams resent after UNAVAILABLE or ABORTED

    def add(self, reply: pb.IngestResponse) -> None:
        self.writer_sequence = reply.writer_sequence
        self.batches += reply.batches
        self.samples += reply.samples
        self.values += reply.values
        self.skipped_nonfinite += reply.skipped_nonfinite
        self.duplicate_batches += reply.duplicate_batches
        self.streams += 1


class _PendingStream:
    """The batches of the stream being sent, kept until the server acknowledges them
    so a failed attempt can be resent; later batches are pulled from the iterable
    only as gRPC asks for them."""

    def __init__(self, encode, source, stream_bytes, first_sequence, per_stream):
        """`encode(item, sequence)` returns (the serialised IngestRequest, its payload
        bytes, its kind: "inline", "shared" (a batch in shared memory) or "summary" (a
        group of them), the batches it holds); `per_stream` bounds the messages of the
        latter two kinds in one stream."""
        self._encode = encode
        self._per_stream = per_stream
        self._held = {}
        self._source, self._stream_bytes = source, stream_bytes
        self._next_sequence = first_sequence
        self._sent = []
        self._bytes = 0
        self._full = False
        self.failure = None

    def start(self) -> bool:
        """Begins the next stream with the iterable's next batch; False when done."""
        self._sent, self._bytes, self._full, self._held = [], 0, False, {}
        return self._pull()

    def acknowledged(self) -> None:
        self._sent = []

    def requests(self):
        yield from list(self._sent)  # a resend: what the failed attempt had pulled
        while not self._full and self._pull():
            yield self._sent[-1]

    def _pull(self) -> bool:
        try:
            batch = next(self._source, _END)
            if batch is _END:
                self._full = True
                return False
            request, nbytes, kind, batches = self._encode(batch, self._next_sequence)
        except BaseException as error:  # raised again by fit() once gRPC has cancelled
            self.failure = error
            raise
        self._next_sequence += batches
        self._sent.append(request)
        # A batch in shared memory is read by the server where it lies, and a resend
        # reads it again: the caller may refill that memory once the next batch is
        # pulled, so by default such a stream ends with it and is acknowledged first.
        # Neither its bytes nor a summary's batch are sent or held here, so they do not
        # fill stream_bytes: a count per stream bounds them.
        if kind == "inline":
            self._bytes += nbytes
            self._full = self._bytes >= self._stream_bytes
        else:
            self._held[kind] = self._held.get(kind, 0) + 1
            self._full = self._held[kind] >= self._per_stream[kind]
        return True


class Fitter:
    """Fits for one client: its transport, where its shared buffers lie (`locate`: a
    source's encoded RegionSlice, or None), and the specs of the datasets it fitted."""

    def __init__(self, transport: Transport, locate: Callable):
        self._transport = transport
        self._locate = locate
        self._specs = {}  # dataset name -> spec, for the local reduction

    def forget(self, name: str) -> None:
        """Drops a cached spec (its dataset was deleted or made again)."""
        self._specs.pop(name, None)

    def fit(self, name: str, batches: Iterable, split_value: int, *,
            writer_id: Optional[str], first_sequence: int, stream_bytes: int,
            retry_for: float, shared_stream_batches: int, local: Optional[bool],
            summaries_per_stream: int) -> "FitResult":
        """Client.fit, with the split resolved to its enum value."""
        writer = writer_id or f"py-{uuid.uuid4().hex}"
        result = FitResult(writer_id=writer, writer_sequence=first_sequence - 1)
        header = pb.IngestRequest(dataset=name, split=split_value,
                                  writer_id=writer).SerializeToString()
        deadline = time.monotonic() + retry_for
        if local is None:
            local = _local.available()
        source = iter(batches)
        if local:  # batches reduced as the dataset would reduce them
            spec, retries = self._dataset_spec(name, deadline)
            result.retries += retries
            source = self._summarised(source, spec, summaries_per_stream, stream_bytes)

        def encode(item, sequence):
            """(request, payload bytes, kind, batches) for a batch or a summary group."""
            head = header + wire.varint_field(wire.INGEST_SEQUENCE, sequence)
            if local:  # the framed summaries of consecutive batches, in one message
                body = b"".join(item)
                return (head + wire.length_delimited(wire.INGEST_SUMMARIES, len(body)) + body, 0,
                        "summary", len(item))
            batch, weights = _weighted(item)
            source = tensors.source(batch)
            weight_field = b""
            if weights is not None:
                w = _local.weights_array(weights)
                weight_field = wire.tensor_field(wire.INGEST_WEIGHTS, w.shape, pb.DTYPE_FLOAT64,
                                                 w.nbytes) + w.tobytes()
            head += weight_field  # the batch goes last
            region = self._locate(source)
            if region is not None:
                return head + wire.tensor_field(wire.INGEST_BATCH, source.shape, source.dtype,
                                                region=region), source.nbytes, "shared", 1
            prefix = wire.tensor_field(wire.INGEST_BATCH, source.shape, source.dtype, source.nbytes)
            return b"".join((head, prefix, source.array)), \
                source.nbytes + len(weight_field), "inline", 1

        stream = _PendingStream(encode, source, stream_bytes, first_sequence,
                                {"shared": shared_stream_batches, "summary": 1})
        try:
            return self._send_streams(stream, result, deadline)
        except errors.NormdError:
            # A spec cached from an earlier fit may be stale (the dataset deleted and
            # made again): the next fit asks afresh. A stale spec can only make the
            # server refuse a summary (it checks layout, channels and policy), never
            # fit wrong statistics.
            self.forget(name)
            raise

    @staticmethod
    def _summarised(batches, spec, per_message: int, max_bytes: int):
        """Groups of up to `per_message` framed summaries (MomentsSummaries entries)
        and about `max_bytes`, each batch reduced before the next is pulled (a loop may
        refill one buffer)."""
        layout = pb.Layout.Name(spec.layout)[len("LAYOUT_"):]
        policy = "skip" if spec.nonfinite_policy == pb.NONFINITE_POLICY_SKIP else "reject"
        sketch = spec.sketch if spec.HasField("sketch") and not spec.sketch.disabled else None
        group, group_bytes = [], 0
        for item in batches:
            batch, weights = _weighted(item)
            try:
                summary = _local.moments(batch, layout, policy, channels=spec.channels,
                                         sketch=sketch, weights=weights,
                                         histogram_edges=spec.histogram_edges)
            except errors.NormdError as error:  # refused here, as the server would refuse it
                raise type(error)(error.code, (
                    f"batch {len(group)} rejected, nothing from this stream was applied: "
                    f"{error.details}")) from None
            body = _local.summary_bytes(summary)
            group.append(wire.length_delimited(wire.SUMMARIES_ENTRY, len(body)) + body)
            group_bytes += len(group[-1])
            if len(group) == per_message or group_bytes >= max_bytes:
                yield group
                group, group_bytes = [], 0
        if group:
            yield group

    def _send_streams(self, stream, result, deadline) -> "FitResult":
        """fit's loop: each stream sent, and resent as fit describes, until the batches
        run out."""
        while stream.start():
            def send(retrying):
                try:
                    return self._transport.ingest_bytes(
                        stream.requests(), wait_for_ready=retrying,
                        metadata=self._transport.metadata,
                        timeout=self._transport.waiting_timeout(retrying, deadline))
                except grpc.RpcError:
                    if stream.failure is not None:  # the batches' iterable raised
                        raise stream.failure
                    raise

            reply, failures = self._transport.with_resends(send, deadline)
            result.retries += failures
            result.add(reply)
            stream.acknowledged()
        return result

    def _dataset_spec(self, name: str, deadline: float):
        """The dataset's spec (asked once per name, see fit), waiting for the server as
        fit's resends do; returns (spec, the attempts that failed)."""
        if name in self._specs:
            return self._specs[name], 0
        transport = self._transport
        reply, failed = transport.with_resends(lambda retrying: transport.stub.GetDataset(
            pb.GetDatasetRequest(name=name), wait_for_ready=retrying, metadata=transport.metadata,
            timeout=transport.waiting_timeout(retrying, deadline)), deadline)
        if len(self._specs) >= 1024:
            self._specs.clear()
        self._specs[name] = reply.spec
        return reply.spec, failed
