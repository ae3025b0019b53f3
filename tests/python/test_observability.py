"""The operator's view of a real normd: its Prometheus endpoint read directly and
through a real Prometheus server, its JSON log lines and request ids, server
reflection driven by a client that knows nothing of normd's API, and flags from the
environment."""
import json
import os
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest

import normd
from conftest import NORMD_BIN, NormdProcess, metrics_url, sample, scrape
from normd.v1 import normd_pb2 as pb
from normd.v1 import normd_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
REFLECTION_PROTO_DIR = Path(__file__).resolve().parent / "protos"


@pytest.fixture
def observed(tmp_path):
    """normd with a metrics endpoint on a free port; yields (server, metrics URL)."""
    server = NormdProcess(tmp_path / "data", flags=["--http_listen=127.0.0.1:0"]).start()
    yield server, metrics_url(server)
    server.stop()


def method(name):
    return {"service": "normd.v1.Normd", "method": name}


def test_metrics_count_requests_errors_latency_and_data(observed, tmp_path):
    server, url = observed
    rng = np.random.default_rng(7)
    batches = [rng.normal(3, 2, (500, 4)).astype(np.float32) for _ in range(3)]
    x = rng.normal(3, 2, (64, 4)).astype(np.float32)
    with normd.Client(server.address, timeout=60) as client:
        client.create_dataset("m", layout="NC", channels=4)
        client.fit("m", batches, local=False)  # batches, whose bytes are counted
        client.freeze("m")
        client.zscore(x, "m")
        client.zscore(x, "m", output_dtype="float64")
        for _ in range(2):
            with pytest.raises(normd.NotFound):
                client.stats("no-such-dataset")
        with pytest.raises(normd.AlreadyExists):
            client.create_dataset("m", layout="NC", channels=4)

    samples = scrape(url)
    assert sample(samples, "normd_rpc_requests_total", **method("CreateDataset")) == 2
    assert sample(samples, "normd_rpc_handled_total", **method("CreateDataset"), code="OK") == 1
    assert sample(samples, "normd_rpc_errors_total", **method("CreateDataset"),
                  code="ALREADY_EXISTS") == 1
    assert sample(samples, "normd_rpc_errors_total", **method("GetStats"), code="NOT_FOUND") == 2
    assert sample(samples, "normd_rpc_requests_total", **method("Normalize")) == 2
    assert sample(samples, "normd_rpc_requests_total", **method("Ingest")) == 1
    assert sample(samples, "normd_rpc_in_flight", **method("Normalize")) == 0
    assert not any(name == "normd_rpc_errors_total" and ("code", "OK") in labels
                   for name, labels in samples)

    # Each histogram is cumulative, ends at +Inf with every finished call, and sums
    # to no more than the wall time the calls could have taken.
    for name in ("CreateDataset", "Ingest", "Freeze", "Normalize", "GetStats"):
        buckets = sorted(
            (float(dict(labels)["le"]), value) for (metric, labels), value in samples.items()
            if metric == "normd_rpc_duration_seconds_bucket" and dict(labels)["method"] == name)
        counts = [value for _, value in buckets]
        assert counts == sorted(counts) and buckets[-1][0] == float("inf")
        count = sample(samples, "normd_rpc_duration_seconds_count", **method(name))
        assert counts[-1] == count == sample(samples, "normd_rpc_requests_total", **method(name))
        assert 0 < sample(samples, "normd_rpc_duration_seconds_sum", **method(name)) < 60

    assert sample(samples, "normd_ingested_batches_total") == 3
    assert sample(samples, "normd_ingested_values_total") == sum(b.size for b in batches)
    assert sample(samples, "normd_ingested_bytes_total") == sum(b.nbytes for b in batches)
    assert sample(samples, "normd_normalized_values_total") == 2 * x.size
    assert sample(samples, "normd_normalized_bytes_total") == x.size * (4 + 8)
    assert sample(samples, "normd_datasets") == 1
    assert sample(samples, "normd_frozen_versions") == 1
    assert sample(samples, "normd_build_info", version="0.1.0") == 1
    assert sample(samples, "normd_start_time_seconds") <= time.time()


def test_metrics_count_duplicates_and_made_up_methods_share_one_series(observed):
    server, url = observed
    x = np.ones((10, 2), np.float32)
    with normd.Client(server.address, timeout=60) as client:
        client.create_dataset("d", layout="NC", channels=2)
        client.fit("d", [x, x], writer_id="w", first_sequence=1)
        client.fit("d", [x, x, x], writer_id="w", first_sequence=1)  # two already applied
    channel = grpc.insecure_channel(server.address)
    for index in range(5):
        call = channel.unary_unary(f"/normd.v1.Normd/MadeUp{index}")
        with pytest.raises(grpc.RpcError) as error:
            call(b"", timeout=10)
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    channel.close()

    samples = scrape(url)
    assert sample(samples, "normd_ingested_batches_total") == 3
    assert sample(samples, "normd_ingest_duplicate_batches_total") == 2
    other = {"service": "", "method": "other"}
    assert sample(samples, "normd_rpc_errors_total", **other, code="UNIMPLEMENTED") == 5
    assert not any("MadeUp" in value for _, labels in samples for _, value in labels)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prometheus_query(port, query):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as reply:
        answer = json.load(reply)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_prometheus_scrapes_normd(observed, tmp_path):
    server, url = observed
    with normd.Client(server.address, timeout=60) as client:
        for name in ("a", "b", "c"):
            client.create_dataset(name, layout="NC", channels=1)
    target = urllib.parse.urlsplit(url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: normd\n"
        f"    static_configs:\n      - targets: ['{target}']\n")
    port = free_port()
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # Poll Prometheus's HTTP API until its first scrape of normd is queryable.
        deadline = time.monotonic() + 90
        result = []
        while time.monotonic() < deadline and prometheus.poll() is None:
            try:
                result = prometheus_query(
                    port, 'normd_rpc_requests_total{job="normd",method="CreateDataset"}')
            except OSError:
                result = []  # not listening yet
            if result:
                break
            time.sleep(0.2)
        assert prometheus.poll() is None, prometheus.stderr.read()
        assert result, "Prometheus never stored a scrape of normd"
        assert float(result[0]["value"][1]) == 3
        assert result[0]["metric"]["instance"] == target
        up = prometheus_query(port, 'up{job="normd"}')
        assert float(up[0]["value"][1]) == 1
        datasets = prometheus_query(port, 'normd_datasets{job="normd"}')
        assert float(datasets[0]["value"][1]) == 3
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)


def test_deploy_prometheus_config_is_valid():
    result = subprocess.run(["promtool", "check", "config", str(REPO / "deploy/prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def rpc_lines(server):
    return [json.loads(line) for line in server.stderr_lines() if '"event":"rpc"' in line]


def test_each_rpc_logs_one_json_line_with_the_request_id_it_returns(normd):
    channel = grpc.insecure_channel(normd.address)
    stub = normd_pb2_grpc.NormdStub(channel)
    reply, call = stub.ListDatasets.with_call(
        pb.ListDatasetsRequest(), metadata=[("x-request-id", "trace-42.a:b_c")], timeout=10)
    assert dict(call.initial_metadata())["x-request-id"] == "trace-42.a:b_c"
    with pytest.raises(grpc.RpcError) as error:
        stub.GetDataset(pb.GetDatasetRequest(name="absent"), timeout=10,
                        metadata=[("x-request-id", "has spaces and \"quotes\"")])
    failed_id = dict(error.value.initial_metadata())["x-request-id"]
    assert failed_id != "has spaces and \"quotes\"" and re.fullmatch(r"[0-9a-f]{16}-\d+", failed_id)
    _, call = stub.ListDatasets.with_call(pb.ListDatasetsRequest(), timeout=10)
    generated_id = dict(call.initial_metadata())["x-request-id"]
    channel.close()
    normd.stop()  # every line is written by now

    for line in normd.stderr_lines():
        json.loads(line)  # every stderr line is one JSON object
    lines = rpc_lines(normd)
    assert [(line["request_id"], line["method"], line["code"]) for line in lines] == [
        ("trace-42.a:b_c", "/normd.v1.Normd/ListDatasets", "OK"),
        (failed_id, "/normd.v1.Normd/GetDataset", "NOT_FOUND"),
        (generated_id, "/normd.v1.Normd/ListDatasets", "OK")]
    assert lines[1]["level"] == "warning" and lines[1]["message"] == 'dataset "absent" does not exist'
    assert all(line["duration_ms"] >= 0 and line["peer"].startswith("ipv4:127.0.0.1:")
               for line in lines)
    assert len({line["request_id"] for line in lines}) == 3


def test_tokens_never_reach_the_log(tmp_path):
    secret, wrong = "writer-token-abcdefghijklmnop", "wrong-token-qrstuvwxyz0123"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"writer {secret} trainer\n")
    server = NormdProcess(tmp_path / "data", flags=[f"--tokens_file={tokens}"]).start()
    with normd.Client(server.address, token=secret, timeout=10) as writer:
        with pytest.raises(normd.PermissionDenied):
            writer.create_dataset("x", layout="NC", channels=1)
    with normd.Client(server.address, token=wrong, timeout=10) as stranger:
        with pytest.raises(normd.Unauthenticated):
            stranger.list_datasets()
    server.stop()
    log = "".join(server.stderr_lines())
    assert len(rpc_lines(server)) == 2
    assert secret not in log and wrong not in log and tokens.read_text() not in log


def reflection_messages(tmp_path):
    """The reflection protocol's messages, compiled from its .proto for this test."""
    out = tmp_path / "reflection_stubs"
    out.mkdir()
    subprocess.run(["protoc", f"-I{REFLECTION_PROTO_DIR}", f"--python_out={out}",
                    "grpc/reflection/v1alpha/reflection.proto"], check=True)
    import importlib.util
    path = out / "grpc/reflection/v1alpha/reflection_pb2.py"
    spec = importlib.util.spec_from_file_location("reflection_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reflection_lets_a_generic_client_list_and_call_the_api(normd, client, tmp_path):
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    reflection = reflection_messages(tmp_path)
    channel = grpc.insecure_channel(normd.address)
    info = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection.ServerReflectionResponse.FromString)

    def ask(**request):
        [reply] = list(info(iter([reflection.ServerReflectionRequest(**request)]), timeout=10))
        assert not reply.HasField("error_response"), reply.error_response
        return reply

    services = {s.name for s in ask(list_services="").list_services_response.service}
    assert {"normd.v1.Normd", "grpc.health.v1.Health"} <= services

    # Build every message type from the descriptors the server sends, nothing local.
    pool = descriptor_pool.DescriptorPool()
    pending = list(ask(file_containing_symbol="normd.v1.Normd")
                   .file_descriptor_response.file_descriptor_proto)
    added = set()
    while pending:
        file = descriptor_pb2.FileDescriptorProto.FromString(pending.pop())
        if file.name in added:
            continue
        missing = [d for d in file.dependency if d not in added]
        if missing:
            for dependency in missing:
                pending.extend(ask(file_by_filename=dependency)
                               .file_descriptor_response.file_descriptor_proto)
            pending.insert(0, file.SerializeToString())
            continue
        pool.Add(file)
        added.add(file.name)
    service = pool.FindServiceByName("normd.v1.Normd")
    assert {"CreateDataset", "Ingest", "Normalize", "GetStats"} <= {
        m.name for m in service.methods}

    factory = message_factory.MessageFactory(pool)

    def call(name, **fields):
        method = service.methods_by_name[name]
        request_class = factory.GetPrototype(method.input_type)
        response_class = factory.GetPrototype(method.output_type)
        stub = channel.unary_unary(f"/normd.v1.Normd/{name}",
                                   request_serializer=request_class.SerializeToString,
                                   response_deserializer=response_class.FromString)
        request = request_class()
        for key, value in fields.items():
            target = request
            *path, last = key.split(".")
            for part in path:
                target = getattr(target, part)
            setattr(target, last, value)
        return stub(request, timeout=10)

    call("CreateDataset", **{"spec.name": "generic", "spec.layout": 1, "spec.channels": 3})
    listed = call("ListDatasets")
    assert [d.spec.name for d in listed.datasets] == ["generic"]
    assert listed.datasets[0].spec.channels == 3
    channel.close()

    # The dataset the generic client made is a real one.
    assert client.get_dataset("generic").spec.channels == 3


def normd_help():
    # Abseil's --help exits with 1.
    result = subprocess.run([NORMD_BIN, "--help"], capture_output=True, text=True, timeout=30)
    return result.stdout + result.stderr


def test_help_documents_every_flag_and_its_environment_variable():
    text = normd_help()
    flags = re.findall(r"^\s+--(\w+) \(", text, re.MULTILINE)
    assert {"listen", "data_dir", "http_listen", "metrics_listen", "tokens_file", "tls_cert_file",
            "max_request_elements", "shutdown_grace_seconds"} <= set(flags)
    unwrapped = " ".join(text.split())
    for flag in flags:
        assert f"[env NORMD_{flag.upper()}]" in unwrapped, flag
    version = subprocess.run([NORMD_BIN, "--version"], capture_output=True, text=True, timeout=30)
    assert version.stdout.strip() == "normd 0.1.0"


def test_flags_come_from_the_environment_and_the_command_line_wins(tmp_path):
    env_dir, flag_dir = tmp_path / "from-env", tmp_path / "from-flag"
    env = {**os.environ, "NORMD_LISTEN": "127.0.0.1:0", "NORMD_DATA_DIR": str(env_dir),
           "NORMD_METRICS_LISTEN": "127.0.0.1:0", "NORMD_LOG_REQUESTS": "false"}
    proc = subprocess.Popen([NORMD_BIN], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        if f"(data in {env_dir})" not in line:
            proc.kill()  # before reading its stderr to the end
            pytest.fail(f"normd ignored NORMD_DATA_DIR: {line!r} {proc.communicate()[1]}")
        address = re.search(r"listening on (\S+)", line).group(1)
        with normd.Client(address, timeout=10) as client:
            client.create_dataset("e", layout="NC", channels=1)
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        events = [json.loads(line) for line in proc.stderr.read().splitlines()]
        [listening] = [e for e in events if e["event"] == "listening"]
        assert re.fullmatch(r"127\.0\.0\.1:\d+", listening["metrics_address"])
        assert not any(e["event"] == "rpc" for e in events)  # NORMD_LOG_REQUESTS=false
        assert (env_dir / "db").is_dir()
    finally:
        proc.kill()
        proc.wait()

    result = subprocess.run([NORMD_BIN, f"--data_dir={flag_dir}", "--listen=127.0.0.1:0"],
                            env={**env, "NORMD_MAX_CONCURRENT_INGESTS": "many"},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert 'NORMD_MAX_CONCURRENT_INGESTS="many"' in result.stderr, result.stderr

    proc = subprocess.Popen([NORMD_BIN, f"--data_dir={flag_dir}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert f"(data in {flag_dir})" in proc.stdout.readline()
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_clients_trickling_their_heads_do_not_keep_scrapes_out(observed):
    """The slow loris: 300 connections (more than the port's 256 slots), each sending
    its request head a line at a time and never ending it. Every scrape is still
    answered, and the normd process keeps no more than its slots open."""
    server, url = observed
    host, port = url.split("/")[2].rsplit(":", 1)
    lorises = []
    try:
        for _ in range(300):
            loris = socket.create_connection((host, int(port)))
            loris.sendall(b"GET /metrics HTTP/1.1\r\n")
            lorises.append(loris)
        for round_ in range(3):
            assert sample(scrape(url), "normd_ingest_streams_active") == 0
            for loris in lorises:
                try:
                    loris.sendall(b"X-Trickle: 1\r\n")
                except OSError:
                    pass  # made room for a scrape, and closed
        sockets = [name for name in os.listdir(f"/proc/{server.proc.pid}/fd")
                   if os.readlink(f"/proc/{server.proc.pid}/fd/{name}").startswith("socket:")]
        assert len(sockets) < 256 + 64  # the port's slots, and gRPC's own
    finally:
        for loris in lorises:
            loris.close()
