"""A client for normd: fit statistics from training batches, freeze them, and
normalise numpy arrays or torch tensors with any scheme."""
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import grpc
import numpy as np

from normd import errors, tensors, transport, wire
from normd import export as _export
from normd import local as _local
from normd.fit import FitResult, Fitter
from normd.shared_memory import SharedBuffer, SharedPool
from normd.v1 import normd_pb2 as pb



def _enum_table(enum, prefix, lower=True):
    """A proto enum's values by name, less its prefix and UNSPECIFIED: the proto is the
    one table of these names, here as in normctl."""
    return {(name[len(prefix):].lower() if lower else name[len(prefix):]): value
            for name, value in enum.items() if not name.endswith("_UNSPECIFIED")}


_LAYOUTS = _enum_table(pb.Layout, "LAYOUT_", lower=False)  # NC, NCHW, NHWC
_SPLITS = _enum_table(pb.Split, "SPLIT_")  # train, validation, test
_WINDOWS = _enum_table(pb.TrafficWindow, "TRAFFIC_WINDOW_")  # since_start, last_hour
_DRIFT_MEASURES = ("standardized_mean_difference", "variance_ratio", "ks", "psi",
                   "js_divergence")


def _thresholds(thresholds: Optional[dict]) -> pb.DriftThresholds:
    out = pb.DriftThresholds()
    for measure, (warn, fail) in (thresholds or {}).items():
        if measure not in _DRIFT_MEASURES:
            raise ValueError(f"thresholds: unknown measure {measure!r}; expected one of "
                             f"{', '.join(_DRIFT_MEASURES)}")
        getattr(out, measure).CopyFrom(pb.DriftLimits(warn=warn, fail=fail))
    return out


def _source(text: str, out: pb.StatisticsSource) -> None:
    """Parses "live:SPLIT", "version:N[:SPLIT]" or "traffic:N[:WINDOW]" into `out`."""
    kind, _, rest = text.partition(":")
    number, _, tail = rest.partition(":")
    if kind == "live" and rest:
        out.live = _choice(_SPLITS, rest, "split")
    elif kind == "version" and number.isdigit():
        out.frozen.version = int(number)
        out.frozen.split = _choice(_SPLITS, tail or "train", "split")
    elif kind == "traffic" and number.isdigit():
        out.traffic.version = int(number)
        out.traffic.window = _choice(_WINDOWS, tail or "since_start", "window")
    else:
        raise ValueError(f"a statistics source is live:SPLIT, version:N[:SPLIT] or "
                         f"traffic:N[:WINDOW], got {text!r}")
_NONFINITE = _enum_table(pb.NonFinitePolicy, "NONFINITE_POLICY_")  # reject, skip


def _choice(table, value, what):
    if value not in table:
        raise ValueError(f"{what} must be one of {sorted(table)}, got {value!r}")
    return table[value]


def _set_affine(scheme, gamma: list, beta: list, eps: Optional[float]) -> None:
    """gamma, beta and eps on any scheme message that has them."""
    scheme.gamma[:], scheme.beta[:] = gamma, beta
    if eps is not None:
        scheme.eps = eps


def _floats(values) -> list:
    """gamma/beta from a sequence, numpy array or torch tensor (None: not sent)."""
    if values is None:
        return []
    if tensors.is_torch(values):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64).ravel().tolist()


@dataclass
class Statistics:
    """Per-channel statistics, float64 (count uint64), one entry per channel."""
    count: np.ndarray
    mean: np.ndarray
    variance: np.ndarray          # population: M2 / count
    sample_variance: np.ndarray   # M2 / (count - 1)
    min: np.ndarray
    max: np.ndarray
    batches: int
    samples: int
    version: int                  # 0: live statistics
    running_mean: Optional[np.ndarray] = None  # running-average datasets, train split
    running_var: Optional[np.ndarray] = None
    num_batches_tracked: int = 0
    # With stats(quantiles=...): [channels, ranks] values, and bounds on their errors
    # (|quantile - numpy.quantile of all the values| <= quantile_error).
    quantile_ranks: Optional[np.ndarray] = None
    quantiles: Optional[np.ndarray] = None
    quantile_error: Optional[np.ndarray] = None
    # With stats(histogram_bins=...): per channel (edges, counts); bins are unions of
    # sketch buckets, so counts are exact for [edges[i], edges[i + 1]).
    histograms: Optional[list] = None
    # The accuracy each channel's sketch holds now (relative to |x - center|).
    relative_accuracy: Optional[np.ndarray] = None
    # stats(traffic=True): the Normalize requests with the version, and those folded in.
    traffic_requests: int = 0
    traffic_sampled_requests: int = 0
    # Sample weights: W = sum(w) per channel (the count when nothing was weighted),
    # M2 / (W - sum(w^2) / W) (reliability weights, numpy.cov's aweights; with 0/1
    # masks or no weights, sample_variance) and Kish's effective count W^2 / sum(w^2).
    # sample_variance treats weights as frequencies: M2 / (W - 1).
    weight_sum: Optional[np.ndarray] = None
    reliability_variance: Optional[np.ndarray] = None
    effective_count: Optional[np.ndarray] = None
    # Datasets created with histogram_edges: per channel (edges, counts, below, above),
    # exact counts over [edges[i], edges[i + 1]) (the last bin closed), and the values
    # below the first edge and above the last.
    fixed_histograms: Optional[list] = None

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.variance)


_NO_STATISTICS = Statistics(
    count=np.zeros(0, np.uint64), mean=np.zeros(0), variance=np.zeros(0),
    sample_variance=np.zeros(0), min=np.zeros(0), max=np.zeros(0), batches=0, samples=0,
    version=0)


def _frozen_request(scheme: str, dataset: str, version: int, params: dict) -> pb.NormalizeRequest:
    """A NormalizeRequest for a frozen-statistics scheme named with its parameters."""
    request = pb.NormalizeRequest(dataset=dataset, version=version)
    allowed = {"zscore": {"eps", "quantile_clip"},
               "minmax": {"low", "high", "clip", "quantile_clip"},
               "scale": {"factor", "offset"}, "batchnorm": {"gamma", "beta", "eps", "quantile_clip"},
               "robust": {"q_low", "q_high", "with_centering", "with_scaling", "unit_variance",
                          "quantile_clip"},
               "clip": {"quantile_clip"}, "quantile": {"n_quantiles", "normal_output"},
               "bucketize": {"ranks"}}
    if scheme not in allowed:
        raise ValueError(f"scheme must be one of {sorted(allowed)}, got {scheme!r}")
    unknown = set(params) - allowed[scheme]
    if unknown:
        raise TypeError(f"{scheme} takes {sorted(allowed[scheme])}, got {sorted(unknown)}")
    message = getattr(request, scheme)
    message.SetInParent()
    for name, value in params.items():
        if value is None:
            continue
        if name in ("gamma", "beta", "ranks"):
            getattr(message, name)[:] = _floats(value)
        elif name == "quantile_clip":
            message.quantile_clip.low, message.quantile_clip.high = map(float, value)
        elif name in ("with_centering", "with_scaling"):  # the wire says what is left out
            setattr(message, name.replace("with_", "without_"), not value)
        else:
            setattr(message, name, value)
    return request


def _params_key(params: dict) -> tuple:
    """A scheme's parameters as a hashable key (sequences as tuples of floats)."""
    return tuple(sorted((k, tuple(_floats(v)) if isinstance(v, (list, tuple, np.ndarray)) else v)
                        for k, v in params.items()))


def _quantile_ranks(scheme: str, params: dict) -> list:
    """The train quantiles a frozen scheme folds (the server's QuantileRanksOf)."""
    ranks = []
    if scheme == "robust":
        ranks = [0.5, params.get("q_low", 0.25), params.get("q_high", 0.75)]
    if scheme == "quantile":  # i / (n - 1), as the server computes them, bit for bit
        n = max(int(params.get("n_quantiles") or 1000), 2)
        ranks = [i / (n - 1) for i in range(n)]
    if scheme == "bucketize":
        ranks = [float(r) for r in params["ranks"]]
    if params.get("quantile_clip") is not None:
        ranks += [float(r) for r in params["quantile_clip"]]
    return ranks


class Client:
    """One connection to a normd server. Every method raises a normd.NormdError
    subclass carrying the gRPC status code and the server's message on failure.

    Normalize methods take a numpy array or a torch tensor (float32, float64,
    float16, uint8; bfloat16 for torch) and return the same kind: a read-only numpy
    view of the reply, or a new torch tensor. An input of over 2 * `chunk_bytes`
    (1 MiB) that is not in shared memory goes in chunks of samples of about
    `chunk_bytes` each (not for batch_norm_train, whose statistics span the batch). `output_dtype` is "float32" (default),
    "float64", "float16" or "bfloat16" (torch only).
    """

    def __init__(self, target: str = "127.0.0.1:50051", *, timeout: Optional[float] = None,
                 max_message_bytes: int = 64 << 20, channel: Optional[grpc.Channel] = None,
                 token: Optional[str] = None, ca_file: Optional[str] = None,
                 cert_file: Optional[str] = None, key_file: Optional[str] = None,
                 load_balancing: Optional[str] = None):
        """`token` is sent as "authorization: Bearer TOKEN" on every call. `ca_file`
        (PEM) turns on TLS and names the CA that signed the server's certificate;
        `cert_file` and `key_file` add this client's certificate for mutual TLS.
        `load_balancing="round_robin"` spreads calls over every address `target`
        resolves to (dns:///normd.NAMESPACE.svc:50051: replicas sharing an etcd store)."""
        self._transport = transport.Transport(
            target, timeout=timeout, max_message_bytes=max_message_bytes, channel=channel,
            token=token, ca_file=ca_file, cert_file=cert_file, key_file=key_file,
            load_balancing=load_balancing)
        self.target = target
        # The transport's, under the names the rest of the client uses.
        self._stub = self._transport.stub
        self._normalize_bytes = self._transport.normalize_bytes
        self._denormalize_bytes = self._transport.denormalize_bytes
        self._ingest_bytes = self._transport.ingest_bytes
        self._templates = {}
        self._framings = {}
        self._buffers = []
        self._fitter = Fitter(self._transport, self._locate)
        self._socket_path = None
        # An inline input over twice this size goes in chunks of about this size.
        self.chunk_bytes = 1 << 20

    def close(self) -> None:
        for buffer in list(self._buffers):
            buffer.close()
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request):
        return self._transport.call(method, request)

    # ---- datasets -------------------------------------------------------------

    def create_dataset(self, name: str, *, layout: str, channels: int,
                       running_average: bool = False, momentum: Optional[float] = 0.1,
                       nonfinite: str = "reject", sketch: bool = True,
                       relative_accuracy: float = 0.0, max_buckets: int = 0,
                       sketch_center=None, histogram_edges=None) -> pb.DatasetInfo:
        """Creates a dataset. running_average=True also keeps batch-norm running
        statistics with `momentum` (None: a cumulative average, as momentum=None in
        torch.nn.BatchNorm). Per-channel quantile sketches are kept unless
        sketch=False: `relative_accuracy` (0: 0.01, kept as 0.0078125), `max_buckets`
        per channel (0: 2048) and `sketch_center` (one value per channel, or None for
        0: set it near data far from 0, such as 1e8 + noise). With `histogram_edges` (one
        list of bin edges for every channel, or one list per channel) every split also
        keeps exact histograms over those bins (numpy.histogram's), returned by stats
        as fixed_histograms."""
        self._fitter.forget(name)
        options = pb.QuantileSketchOptions(
            disabled=not sketch, relative_accuracy=relative_accuracy, max_buckets=max_buckets,
            center=[] if sketch_center is None else np.asarray(sketch_center, np.float64))
        spec = pb.DatasetSpec(name=name, layout=_choice(_LAYOUTS, layout, "layout"),
                              channels=channels, sketch=options,
                              nonfinite_policy=_choice(_NONFINITE, nonfinite, "nonfinite"))
        for edges in _local._edge_lists(histogram_edges):
            spec.histogram_edges.add(edges=edges)
        if running_average:
            spec.running_average.SetInParent()
            if momentum is not None:
                spec.running_average.momentum = momentum
        else:
            spec.exact.SetInParent()
        return self._call(self._stub.CreateDataset, pb.CreateDatasetRequest(spec=spec))

    def get_dataset(self, name: str) -> pb.DatasetInfo:
        return self._call(self._stub.GetDataset, pb.GetDatasetRequest(name=name))

    def list_datasets(self) -> list:
        infos, token = [], ""
        while True:
            page = self._call(self._stub.ListDatasets, pb.ListDatasetsRequest(page_token=token))
            infos.extend(page.datasets)
            token = page.next_page_token
            if not token:
                return infos

    def delete_dataset(self, name: str) -> None:
        self._fitter.forget(name)
        self._call(self._stub.DeleteDataset, pb.DeleteDatasetRequest(name=name))

    # ---- fit ------------------------------------------------------------------

    def fit(self, name: str, batches: Iterable, split: str = "train", *,
            writer_id: Optional[str] = None, first_sequence: int = 1,
            stream_bytes: int = 64 << 20, retry_for: float = 300.0,
            shared_stream_batches: int = 1, local: Optional[bool] = None,
            summaries_per_stream: int = 256) -> "FitResult":
        """Streams `batches` (any iterable of arrays or tensors, consumed lazily and
        paced by gRPC flow control) into dataset `name`, exactly once.

        An item may also be a pair (batch, weights): sample weights or a mask, one
        finite weight >= 0 per index of a leading part of the batch's shape ([N] per
        sample, [N, T] per time step of [N, T, F] sequences with 0 for padding, the
        batch's shape per value), at least one positive. The statistics become
        weighted (mean = sum(w x) / W, variance = sum(w (x - mean)^2) / W); a weight of
        0 leaves a value out, NaN included; count is the values with w > 0.

        Batches go in streams of up to `stream_bytes` of sent data (batches in shared
        memory are not sent; see below); each stream is a transaction
        the server acknowledges before the next begins, so the client holds at most
        one stream's batches. Every batch carries `writer_id` (default: a new random
        id) and a sequence number counting from `first_sequence`. When the server is
        unreachable, restarts or cannot write (UNAVAILABLE, a broken connection, a
        full disk), a concurrent resend overtook a stream (ABORTED), or a
        shutting-down server cancelled it, the unacknowledged stream is resent after
        a jittered exponential backoff (50 ms doubling to 2 s), waiting for the
        server for up to `retry_for` seconds in all; the server drops the batches it
        had already committed. To resume after your own process
        restarted, call fit again with the same writer_id over the same batches.

        Batches in a shared buffer of this client (shared_buffer, shared_pool) are not
        sent: the server reads them where they lie. A resend would read them again, so
        by default each is its own stream, acknowledged before the next batch is
        pulled, and a loop may refill one buffer for every batch. When batches lie in
        memory that stays unchanged until fit() returns (distinct buffers, say),
        `shared_stream_batches` lets a stream hold that many of them, sparing a commit
        each.

        With `local` (the default where normd's native module is built), each batch
        is reduced here, with normd's own kernels, to its exact per-channel moments
        (normd.moments) and only that summary is sent: O(channels) bytes of moments
        plus the quantile sketches (a few bytes per distinct bucket) instead of the
        batch, with the same sequence numbers, and the same statistics to float64's
        last bits or so (uint8: exactly; sketches: exactly). A stream is one message
        of up to `summaries_per_stream` of them (and up to `stream_bytes`), reduced
        before it is sent, and one commit; local=False sends the batches themselves.

        A refused batch (wrong shape, NaN, ...) rejects its stream; streams
        acknowledged before it stay applied. If the iterable raises, the open stream
        is cancelled, nothing of it is applied, and the exception propagates."""
        return self._fitter.fit(
            name, batches, _choice(_SPLITS, split, "split"), writer_id=writer_id,
            first_sequence=first_sequence, stream_bytes=stream_bytes, retry_for=retry_for,
            shared_stream_batches=shared_stream_batches, local=local,
            summaries_per_stream=summaries_per_stream)

    def _error(self, error: grpc.RpcError) -> errors.NormdError:
        return self._transport.error(error)

    def freeze(self, name: str, *, min_train_count: int = 0, drift_gate: bool = False,
               thresholds: Optional[dict] = None, mark: bool = False) -> int:
        """Freezes the live training statistics into a new version; returns its number.

        A gate (min_train_count, or drift_gate: drift from the previous version's train
        split at level fail under `thresholds`) refuses the freeze (FailedPrecondition
        naming what failed), or with `mark` freezes anyway and keeps the findings in
        the version's gate_findings."""
        request = pb.FreezeRequest(dataset=name)
        if min_train_count or drift_gate or mark:
            request.gate.min_train_count = min_train_count
            request.gate.skip_drift = not drift_gate
            request.gate.thresholds.CopyFrom(_thresholds(thresholds))
            request.gate.action = (pb.FreezeGate.ACTION_MARK if mark
                                   else pb.FreezeGate.ACTION_REFUSE)
        return self._call(self._stub.Freeze, request).version

    def pin_version(self, name: str, version: int = 0, *,
                    rollback: bool = False) -> pb.DatasetInfo:
        """Pins `version` as "prod": readers asking for version 0 get it instead of the
        latest. version 0 removes the pin; rollback restores the one before."""
        return self._call(self._stub.PinVersion, pb.PinVersionRequest(
            dataset=name, version=version, rollback=rollback))

    def compare(self, name: str, reference: str = "", candidate: str = "", *,
                thresholds: Optional[dict] = None, bins: int = 0,
                equal_width_bins: bool = False) -> pb.CompareResponse:
        """Per-channel drift of `candidate` from `reference`, each "live:SPLIT",
        "version:N[:SPLIT]" or "traffic:N[:since_start|last_hour]" (version 0: the pinned
        or latest); by default the latest version's train split against its live
        traffic. `thresholds` maps a measure (standardized_mean_difference,
        variance_ratio, ks, psi, js_divergence) to (warn, fail). PSI and JS use `bins`
        (0: 10) cut at the reference's quantiles, or of equal width."""
        request = pb.CompareRequest(dataset=name, bins=bins, equal_width_bins=equal_width_bins,
                                    thresholds=_thresholds(thresholds))
        for text, field in ((reference, request.reference), (candidate, request.candidate)):
            if text:
                _source(text, field)
        return self._call(self._stub.Compare, request)

    def stats(self, name: str, version: int = 0, split: str = "train", *,
              quantiles=(), histogram_bins: int = 0, traffic: bool = False,
              window: str = "since_start") -> Statistics:
        """Statistics of a frozen `version` (0: the live accumulators) and split; with
        `quantiles` (ranks in [0, 1]) or `histogram_bins`, also each channel's
        quantiles (numpy.quantile's definition, each with an error bound) and
        histogram, from the dataset's sketches. With `traffic`, what Normalize saw
        with `version` (0: the pinned or latest) in `window` instead of a split."""
        ranks = np.asarray(quantiles, dtype=np.float64).reshape(-1)
        reply = self._call(self._stub.GetStats, pb.GetStatsRequest(
            dataset=name, version=version, split=_choice(_SPLITS, split, "split"),
            quantiles=ranks, histogram_bins=histogram_bins, traffic=traffic,
            traffic_window=_choice(_WINDOWS, window, "window")))
        s = reply.stats
        stats = Statistics(
            count=np.array(s.count, dtype=np.uint64), mean=np.array(s.mean),
            variance=np.array(s.variance), sample_variance=np.array(s.sample_variance),
            min=np.array(s.min), max=np.array(s.max), batches=s.batches, samples=s.samples,
            version=reply.version, num_batches_tracked=s.num_batches_tracked,
            weight_sum=np.array(s.weight_sum),
            reliability_variance=np.array(s.reliability_variance),
            effective_count=np.array(s.effective_count),
            traffic_requests=reply.traffic_requests,
            traffic_sampled_requests=reply.traffic_sampled_requests)
        if len(s.fixed_histograms):
            edges = _local._edge_lists(self.get_dataset(name).spec.histogram_edges)
            stats.fixed_histograms = [
                (np.array(edges[0 if len(edges) == 1 else c]), np.array(h.counts), h.below,
                 h.above) for c, h in enumerate(s.fixed_histograms)]
        if len(s.running_mean):
            stats.running_mean = np.array(s.running_mean)
            stats.running_var = np.array(s.running_var)
        if len(s.distributions):
            d = s.distributions
            stats.quantile_ranks = ranks
            stats.quantiles = np.array([c.quantile for c in d]).reshape(len(d), len(ranks))
            stats.quantile_error = np.array([c.quantile_error for c in d]).reshape(
                len(d), len(ranks))
            stats.relative_accuracy = np.array([c.relative_accuracy for c in d])
            if histogram_bins:
                stats.histograms = [(np.array(c.histogram_edges), np.array(c.histogram_counts))
                                    for c in d]
        return stats

    # ---- in process -------------------------------------------------------------

    def export(self, dataset: str, version: int = 0, format: str = "json", *,
               eps: float = 1e-5, layer: str = "bn", pixel_scale: Optional[float] = None):
        """A frozen `version` (0: the latest) of `dataset` for another framework, with
        the statistics normd's z-score and batch norm use (the running average for
        running-average datasets):

        - "torchvision": {"mean", "std"} for torchvision.transforms.Normalize, std =
          sqrt(variance + eps), so it computes normd's z-score;
        - "module": a normd.torch.FrozenNormalize (statistics as buffers; any device;
          TorchScript);
        - "state_dict": {layer.running_mean, layer.running_var,
          layer.num_batches_tracked} for a torch.nn.BatchNorm layer named `layer`;
        - "dali": {"mean", "std"} for DALI's crop_mirror_normalize on uint8 pixels:
          the statistics times `pixel_scale` (default 255 when the data were fit in
          [0, 1], else 1);
        - "json": the statistics with their provenance (dataset, version, freeze
          time, counts)."""
        info = self.get_dataset(dataset)
        version = version or info.pinned_version or info.latest_version
        if version == 0:
            raise errors.FailedPrecondition(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'dataset "{dataset}" has no frozen version; call freeze first')
        found = [v for v in info.versions if v.version == version]
        if not found:
            raise errors.NotFound(grpc.StatusCode.NOT_FOUND,
                                  f'dataset "{dataset}" has no version {version}')
        return _export.export(info, self.stats(dataset, version=version), found[0], format,
                              eps=eps, layer=layer, pixel_scale=pixel_scale)

    def normalizer(self, dataset: str, *, version: int = 0, scheme: str = "zscore",
                   **params) -> "_local.Normalizer":
        """A frozen `version` (0: the latest) of `dataset`, fetched once, normalising in
        this process with normd's own kernels: `normalizer(x, out=None,
        output_dtype=None)` returns what `Client.<scheme>(x, dataset, version=...)`
        would, bit for bit, with no round trip. `scheme` is "zscore" (eps), "minmax"
        (low, high, clip), "batchnorm" (gamma, beta, eps) or "scale" (factor, offset; no
        dataset needed: pass ""). The batch-statistics schemes run in process too:
        "batchnorm_training", "layernorm" (normalized_shape), "instancenorm",
        "groupnorm" (num_groups), each with gamma, beta, eps, and a `layout` when no
        dataset gives one (default NCHW, as the scheme methods). Needs normd's native
        module."""
        if scheme == "scale":
            return _local.Normalizer("", 0, scheme, params, None, 1, _NO_STATISTICS)
        if scheme in _local.BATCH_SCHEMES:
            layout = params.pop("layout", None)
            channels = 0
            if dataset:  # the dataset's layout and channels, as the server takes them
                spec = self.get_dataset(dataset).spec
                own = pb.Layout.Name(spec.layout)[len("LAYOUT_"):]
                if layout is not None and layout != own:
                    raise errors.InvalidArgument(grpc.StatusCode.INVALID_ARGUMENT, (
                        f'layout {layout} does not match dataset "{dataset}", whose layout is '
                        f"{own}; leave layout unset or match it"))
                layout, channels = own, spec.channels
            elif layout is None and scheme != "layernorm":
                layout = "NCHW"
            return _local.Normalizer(dataset, 0, scheme, params, layout, channels)
        info = self.get_dataset(dataset)
        if version == 0:
            version = info.pinned_version or info.latest_version
            if version == 0:
                raise errors.FailedPrecondition(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f'dataset "{dataset}" has no frozen version; call freeze first')
        stats = self.stats(dataset, version=version, quantiles=_quantile_ranks(scheme, params))
        layout = pb.Layout.Name(info.spec.layout)[len("LAYOUT_"):]
        return _local.Normalizer(dataset, version, scheme, params, layout, info.spec.channels,
                                 stats)

    # ---- shared memory ----------------------------------------------------------

    def shared_buffer(self, nbytes: int, name: Optional[str] = None) -> SharedBuffer:
        """`nbytes` of memory shared with a server on this host (see SharedBuffer):
        arrays in it are sent as references, and out= arrays in it are written in
        place by the server."""
        buffer = SharedBuffer(self, nbytes, name)
        self._buffers.append(buffer)
        return buffer

    def shared_pool(self, nbytes: int, name: Optional[str] = None) -> SharedPool:
        """A SharedBuffer to carve arrays and tensors from (pool.array, pool.tensor)."""
        pool = SharedPool(self, nbytes, name)
        self._buffers.append(pool.buffer)
        return pool

    def regions(self) -> pb.ListRegionsResponse:
        """This caller's registered regions and the server's handoff socket."""
        return self._call(self._stub.ListRegions, pb.ListRegionsRequest())

    def _handoff_socket(self) -> str:
        if self._socket_path is None:
            path = self.regions().handoff_socket
            if not path:
                raise errors.FailedPrecondition(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "the server has no shared memory (see its --region_socket)")
            self._socket_path = path
        return self._socket_path

    def _register_region(self, name: str, claim: str) -> None:
        self._call(self._stub.RegisterRegion, pb.RegisterRegionRequest(name=name, claim=claim))

    def _forget_buffer(self, buffer: SharedBuffer) -> None:
        if buffer in self._buffers:
            self._buffers.remove(buffer)
        try:  # frees the name at once; closing the handoff connection would, a moment later
            self._call(self._stub.UnregisterRegion, pb.UnregisterRegionRequest(name=buffer.name))
        except errors.NormdError:
            pass

    def _locate(self, source) -> Optional[bytes]:
        """The RegionSlice (encoded) of a source that lies in one of our buffers."""
        if not self._buffers:
            return None
        for buffer in self._buffers:
            offset = buffer.locate(source.address, source.nbytes)
            if offset is not None:
                return wire.region_slice(buffer.name, offset)
        return None

    # ---- normalise --------------------------------------------------------------

    def normalize(self, x, request: pb.NormalizeRequest, output_dtype=None, *, out=None):
        """Sends `x` with a prepared NormalizeRequest (scheme, dataset, layout set);
        the scheme methods below build it for you, once per set of arguments."""
        return self._normalize(x, self._template(request, output_dtype, out), out)

    def _template(self, request: pb.NormalizeRequest, output_dtype, out, inverse=False):
        """The request's serialised fields but the input, its output dtype, whether it
        may go in chunks and whether it is a Denormalize: built once per set of
        arguments and reused (the tensor is appended per call)."""
        if output_dtype is None and out is not None:
            request.output_dtype = tensors.dtype_of(out)
        else:
            request.output_dtype = tensors.output_dtype(output_dtype)
        # Every scheme but batch norm in training mode treats samples apart, so a large
        # input may go in chunks of samples.
        separable = request.WhichOneof("scheme") != "batchnorm_training"
        return request.SerializeToString(), request.output_dtype, separable, inverse

    def _cached(self, key, build, output_dtype, out, inverse=False):
        key = (key, output_dtype, None if out is None else tensors.dtype_of(out), inverse)
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) >= 4096:
                self._templates.clear()
            template = self._templates[key] = self._template(build(), output_dtype, out,
                                                             inverse)
        return template

    def _normalize(self, x, template, out):
        template, output_dtype, separable, inverse = template
        like_torch = tensors.is_torch(x)
        if output_dtype == pb.DTYPE_BFLOAT16 and not like_torch and out is None:
            raise TypeError("numpy has no bfloat16: pass a torch tensor to get bfloat16 back")
        source = tensors.source(x)
        region = self._locate(source)
        if (region is None and separable and source.nbytes > 2 * self.chunk_bytes
                and len(source.shape) > 1 and source.shape[0] > 1
                and (out is None or self._locate(tensors.source(out)) is None)):
            return self._normalize_in_chunks(template, output_dtype, source, out, like_torch,
                                             inverse)
        parts = [template]
        target = None
        if out is not None:
            target = self._locate(tensors.source(out))
            if target is not None:
                parts.append(wire.length_delimited(wire.NORMALIZE_OUTPUT_REGION, len(target)) +
                             target)
        expected_head, expected = b"", None
        if region is not None:  # the input goes last
            parts.append(wire.tensor_field(wire.NORMALIZE_INPUT, source.shape, source.dtype,
                                           region=region))
        else:
            head, expected_head, expected = self._framing(source, output_dtype)
            parts += [head, source.array]
        reply = self._call_normalize(b"".join(parts), inverse)
        tensor, _ = wire.normalize_response(reply, expected_head, expected)
        if target is not None:
            return out
        if out is not None:
            tensors.write_into(out, tensors.reply_values(reply, tensor))
            return out
        return tensors.reply_array(reply, tensor, like_torch)

    def _framing(self, source, output_dtype):
        """For an inline input: the request's input field up to its values, and the
        reply's output field up to its values as normd lays it out, with what it holds.
        Built once per shape and dtypes: they depend on nothing else."""
        key = (source.shape, source.dtype, output_dtype)
        framing = self._framings.get(key)
        if framing is None:
            if len(self._framings) >= 1024:
                self._framings.clear()
            out_dtype = output_dtype or pb.DTYPE_FLOAT32  # the server's default
            out_bytes = (source.nbytes // tensors.wire_numpy_dtype(source.dtype).itemsize
                         * tensors.wire_numpy_dtype(out_dtype).itemsize)
            head = wire.tensor_field(wire.NORMALIZE_INPUT, source.shape, source.dtype,
                                     source.nbytes)
            reply_head = wire.tensor_field(wire.RESPONSE_OUTPUT, source.shape, out_dtype, out_bytes)
            framing = self._framings[key] = (
                head, reply_head,
                wire.TensorReply(source.shape, out_dtype, len(reply_head), out_bytes))
        return framing

    def _call_normalize(self, request: bytes, inverse: bool = False) -> bytes:
        return self._call(self._denormalize_bytes if inverse else self._normalize_bytes, request)

    def _normalize_in_chunks(self, template, output_dtype, source, out, like_torch, inverse):
        """A large input over the socket as consecutive requests of about chunk_bytes
        of samples each: gRPC carries such messages several times faster than one
        large one (bench/whole_path.py's echo rows). Every chunk uses the version the
        first one resolved, even if a freeze lands meanwhile."""
        rows = source.shape[0]
        per_chunk = max(1, self.chunk_bytes // (source.nbytes // rows))
        result = None
        if out is None:
            result = np.empty(source.shape, tensors.wire_numpy_dtype(output_dtype))
        pin = b""
        for start in range(0, rows, per_chunk):
            chunk = source.array[start:start + per_chunk]
            reply = self._call_normalize(b"".join(
                (template, pin,
                 wire.tensor_field(wire.NORMALIZE_INPUT, chunk.shape, source.dtype, chunk.nbytes),
                 chunk)), inverse)
            tensor, version = wire.normalize_response(reply)
            values = tensors.reply_values(reply, tensor)
            if out is not None:
                tensors.write_into(out[start:start + per_chunk], values)
            else:
                result[start:start + per_chunk] = values
            if start == 0 and version:
                pin = wire.varint_field(wire.NORMALIZE_VERSION, version)
        if out is not None:
            return out
        return tensors.as_result(result, output_dtype, like_torch, owned=True)

    def denormalize(self, x, dataset: str, *, scheme: str = "zscore", version: int = 0,
                    output_dtype=None, out=None, **params):
        """The inverse of a frozen scheme: given what zscore / minmax / scale /
        batch_norm returned (with the same `params`: eps; low, high; factor, offset;
        gamma, beta, eps), the input it came from, e.g. a regression model's
        predictions back in the target's units. Schemes with no inverse (minmax with
        clip, a zero scale or gamma, a minmax channel constant in training) raise."""
        def build():
            return _frozen_request(scheme, dataset, version, params)
        key = ("denormalize", scheme, dataset, version, _params_key(params))
        return self._normalize(x, self._cached(key, build, output_dtype, out, inverse=True), out)

    def robust(self, x, dataset: str, *, version: int = 0, q_low: float = 0.25,
               q_high: float = 0.75, with_centering: bool = True, with_scaling: bool = True,
               unit_variance: bool = False, quantile_clip=None, output_dtype=None, out=None):
        """(x - median) / (Q(q_high) - Q(q_low)) with a frozen version's train quantiles
        (from its sketches), as scikit-learn's RobustScaler; unit_variance gives normal
        data unit variance. quantile_clip=(low, high) ranks clips inputs first (every
        scheme with statistics takes it)."""
        params = dict(q_low=q_low, q_high=q_high, with_centering=with_centering,
                      with_scaling=with_scaling, unit_variance=unit_variance,
                      quantile_clip=quantile_clip)
        return self._frozen("robust", x, dataset, version, params, output_dtype, out)

    def quantile_transform(self, x, dataset: str, *, version: int = 0, n_quantiles: int = 1000,
                           output: str = "uniform", output_dtype=None, out=None):
        """The train split's distribution function at x, as scikit-learn's
        QuantileTransformer (output "uniform" on [0, 1], or "normal"), from the frozen
        version's quantiles at n_quantiles evenly spaced ranks; denormalize(scheme=
        "quantile", ...) maps back."""
        if output not in ("uniform", "normal"):
            raise ValueError(f"output must be 'uniform' or 'normal', got {output!r}")
        return self._frozen("quantile", x, dataset, version,
                            dict(n_quantiles=n_quantiles, normal_output=output == "normal"),
                            output_dtype, out)

    def bucketize(self, x, dataset: str, ranks, *, version: int = 0, output_dtype=None,
                  out=None):
        """numpy.digitize(x, boundaries) with the boundaries at the frozen version's
        train quantiles of `ranks` (rising in [0, 1]): e.g. [0.25, 0.5, 0.75] gives
        quartile indices 0..3."""
        return self._frozen("bucketize", x, dataset, version, dict(ranks=tuple(_floats(ranks))),
                            output_dtype, out)

    def clip(self, x, dataset: str, *, low: float, high: float, version: int = 0,
             output_dtype=None, out=None):
        """x clipped to the frozen version's train quantiles at ranks [low, high]."""
        return self._frozen("clip", x, dataset, version, dict(quantile_clip=(low, high)),
                            output_dtype, out)

    def _frozen(self, scheme, x, dataset, version, params, output_dtype, out):
        def build():
            return _frozen_request(scheme, dataset, version, params)
        key = (scheme, dataset, version, _params_key(params))
        return self._normalize(x, self._cached(key, build, output_dtype, out), out)

    def zscore(self, x, dataset: str, *, version: int = 0, eps: Optional[float] = None,
               quantile_clip=None, output_dtype=None, out=None):
        """(x - mean) / sqrt(var + eps) with a frozen version's statistics.

        Every scheme method takes `out`: an array or tensor of x's shape (and of
        output_dtype, which it sets when not given) to write the result into. When x or
        out lies in a shared buffer of this client (shared_buffer, shared_pool), it
        stays there: the server reads and writes it in place."""
        if quantile_clip is not None:
            return self._frozen("zscore", x, dataset, version,
                                dict(eps=eps, quantile_clip=quantile_clip), output_dtype, out)

        def build():
            request = pb.NormalizeRequest(dataset=dataset, version=version)
            request.zscore.SetInParent()
            if eps is not None:
                request.zscore.eps = eps
            return request
        return self._normalize(x, self._cached(("zscore", dataset, version, eps), build,
                                               output_dtype, out), out)

    def minmax(self, x, dataset: str, *, version: int = 0, low: float = 0.0, high: float = 1.0,
               clip: bool = False, quantile_clip=None, output_dtype=None, out=None):
        """low + (x - min) / (max - min) * (high - low) with the training split's min and
        max; clip=True clamps the result to [low, high] (NaN stays NaN)."""
        if quantile_clip is not None:
            return self._frozen("minmax", x, dataset, version,
                                dict(low=low, high=high, clip=clip, quantile_clip=quantile_clip),
                                output_dtype, out)
        def build():
            request = pb.NormalizeRequest(dataset=dataset, version=version)
            request.minmax.low, request.minmax.high = low, high
            request.minmax.clip = clip
            return request
        return self._normalize(x, self._cached(("minmax", dataset, version, low, high, clip),
                                               build, output_dtype, out), out)

    def scale(self, x, factor: float, offset: float = 0.0, *, output_dtype=None, out=None):
        """x * factor + offset, e.g. factor=1/255 for 8-bit images; needs no dataset."""
        def build():
            request = pb.NormalizeRequest()
            request.scale.factor, request.scale.offset = factor, offset
            return request
        return self._normalize(x, self._cached(("scale", factor, offset), build, output_dtype,
                                               out), out)

    def batch_norm(self, x, dataset: str, *, version: int = 0, gamma=None, beta=None,
                   eps: Optional[float] = None, output_dtype=None, out=None):
        """Batch norm in eval mode with a frozen version's statistics (running
        statistics for running-average datasets), as F.batch_norm(training=False)."""
        gamma, beta = _floats(gamma), _floats(beta)

        def build():
            request = pb.NormalizeRequest(dataset=dataset, version=version)
            _set_affine(request.batchnorm, gamma, beta, eps)
            return request
        key = ("batchnorm", dataset, version, tuple(gamma), tuple(beta), eps)
        return self._normalize(x, self._cached(key, build, output_dtype, out), out)

    def batch_norm_train(self, x, *, dataset: str = "", layout: Optional[str] = None,
                         gamma=None, beta=None, eps: Optional[float] = None,
                         update: bool = False, split: str = "train", output_dtype=None,
                         out=None):
        """Batch norm in training mode, as F.batch_norm(training=True): normalises
        with x's own batch statistics. update=True also folds the batch into
        `dataset` (train split only), updating its running statistics as
        torch.nn.BatchNorm updates its buffers, durably before returning."""
        gamma, beta = _floats(gamma), _floats(beta)

        def build():
            request = self._per_sample_request(dataset, layout, default_layout="NCHW")
            bn = request.batchnorm_training
            _set_affine(bn, gamma, beta, eps)
            bn.update_statistics = update
            bn.split = _choice(_SPLITS, split, "split")
            return request
        key = ("batchnorm_training", dataset, layout, tuple(gamma), tuple(beta), eps, update,
               split)
        return self._normalize(x, self._cached(key, build, output_dtype, out), out)

    def layer_norm(self, x, normalized_shape: Optional[Sequence[int]] = None, *, gamma=None,
                   beta=None, eps: Optional[float] = None, output_dtype=None, out=None):
        """As F.layer_norm over the trailing `normalized_shape` dims (None: every dim
        after the first); gamma/beta have shape normalized_shape."""
        shape = tuple(normalized_shape or ())
        gamma, beta = _floats(gamma), _floats(beta)

        def build():
            request = pb.NormalizeRequest()
            ln = request.layernorm
            ln.normalized_shape[:] = list(shape)
            _set_affine(ln, gamma, beta, eps)
            return request
        key = ("layernorm", shape, tuple(gamma), tuple(beta), eps)
        return self._normalize(x, self._cached(key, build, output_dtype, out), out)

    def instance_norm(self, x, *, dataset: str = "", layout: Optional[str] = None, gamma=None,
                      beta=None, eps: Optional[float] = None, output_dtype=None, out=None):
        """As F.instance_norm; layout "NCHW" (default without a dataset) or "NHWC"."""
        gamma, beta = _floats(gamma), _floats(beta)

        def build():
            request = self._per_sample_request(dataset, layout, default_layout="NCHW")
            _set_affine(request.instancenorm, gamma, beta, eps)
            return request
        key = ("instancenorm", dataset, layout, tuple(gamma), tuple(beta), eps)
        return self._normalize(x, self._cached(key, build, output_dtype, out), out)

    def group_norm(self, x, num_groups: int, *, dataset: str = "", layout: Optional[str] = None,
                   gamma=None, beta=None, eps: Optional[float] = None, output_dtype=None,
                   out=None):
        """As F.group_norm; layout "NCHW" (default without a dataset), "NHWC" or "NC"."""
        gamma, beta = _floats(gamma), _floats(beta)

        def build():
            request = self._per_sample_request(dataset, layout, default_layout="NCHW")
            gn = request.groupnorm
            gn.num_groups = num_groups
            _set_affine(gn, gamma, beta, eps)
            return request
        key = ("groupnorm", num_groups, dataset, layout, tuple(gamma), tuple(beta), eps)
        return self._normalize(x, self._cached(key, build, output_dtype, out), out)

    @staticmethod
    def _per_sample_request(dataset: str, layout: Optional[str], default_layout: str):
        # With a dataset the server takes its layout; without one, PyTorch's NCHW.
        if layout is None and not dataset:
            layout = default_layout
        request = pb.NormalizeRequest(dataset=dataset)
        if layout is not None:
            request.layout = _choice(_LAYOUTS, layout, "layout")
        return request
