"""TLS, mutual TLS and bearer tokens end to end: normd started with certificates made
for the test (tests/support/make_certs.sh) and a tokens file, driven by the Python
client and by normctl; and the hostile local caller: another uid, a zero umask,
memory handed over and never claimed, a flood of connections."""
import fcntl
import json
import os
import resource
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

import normd
from conftest import NORMCTL_BIN, PYTHON_PACKAGE_DIR, NormdProcess, metrics_url, wait_for_sample
from normd.v1 import normd_pb2 as pb
from normd.v1 import normd_pb2_grpc

MAKE_CERTS = Path(__file__).resolve().parent.parent / "support" / "make_certs.sh"
TOKENS = {"reader": "reader-secret-0123456789", "writer": "writer-secret-0123456789",
          "admin": "admin-secret-0123456789"}


@pytest.fixture
def secured(tmp_path):
    """normd with mutual TLS and tokens; yields (server, certificate directory)."""
    certs = tmp_path / "certs"
    subprocess.run([str(MAKE_CERTS), str(certs)], check=True)
    tokens = tmp_path / "tokens"
    tokens.write_text("".join(f"{role} {token} {role}-caller\n" for role, token in TOKENS.items()))
    server = NormdProcess(tmp_path / "data", flags=[
        f"--tls_cert_file={certs / 'server.pem'}", f"--tls_key_file={certs / 'server.key'}",
        f"--tls_client_ca_file={certs / 'ca.pem'}", f"--tokens_file={tokens}"]).start()
    yield server, certs
    server.stop()


def client(server, certs, role=None, **overrides):
    options = dict(ca_file=str(certs / "ca.pem"), cert_file=str(certs / "client.pem"),
                   key_file=str(certs / "client.key"), token=TOKENS.get(role), timeout=30)
    options.update(overrides)
    return normd.Client(server.address, **options)


def test_python_client_over_mutual_tls_with_each_role(secured):
    server, certs = secured
    x = np.random.default_rng(1).normal(5, 2, (100, 3))
    with client(server, certs, "admin") as admin:
        admin.create_dataset("t", layout="NC", channels=3)
    with client(server, certs, "writer") as writer:
        writer.fit("t", [x])
        writer.freeze("t")
        with pytest.raises(normd.PermissionDenied, match="CreateDataset needs the admin role"):
            writer.create_dataset("u", layout="NC", channels=3)
    with client(server, certs, "reader") as reader:
        np.testing.assert_allclose(reader.stats("t").mean, x.mean(axis=0), rtol=1e-12)
        z = reader.zscore(x.astype(np.float32), "t")
        np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
        with pytest.raises(normd.PermissionDenied, match="Ingest needs the writer role"):
            reader.fit("t", [x], retry_for=0)
    with client(server, certs, token="not-a-known-token-000") as stranger:
        with pytest.raises(normd.Unauthenticated, match="unknown bearer token"):
            stranger.stats("t")
    with client(server, certs) as anonymous:
        with pytest.raises(normd.Unauthenticated, match="needs an \"authorization"):
            anonymous.list_datasets()
    # Without a client certificate the TLS handshake itself fails.
    with client(server, certs, "admin", cert_file=None, key_file=None, timeout=5) as no_cert:
        with pytest.raises(normd.Unavailable):
            no_cert.list_datasets()
    with client(server, certs, "admin") as admin:
        assert admin.stats("t").batches == 1  # nothing above changed the dataset


def test_normctl_with_a_token_file_and_certificates(secured, tmp_path):
    server, certs = secured
    token_file = tmp_path / "admin.token"
    token_file.write_text(TOKENS["admin"] + "\n")
    tls = [f"--server={server.address}", f"--ca_file={certs / 'ca.pem'}",
           f"--cert_file={certs / 'client.pem'}", f"--key_file={certs / 'client.key'}"]

    def normctl(*args):
        return subprocess.run([NORMCTL_BIN, *tls, *args], capture_output=True, text=True,
                              timeout=60)

    assert normctl(f"--token_file={token_file}", "create", "c", "--channels=2").returncode == 0
    refused = normctl("list")
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr
    assert TOKENS["admin"] not in refused.stderr
    listed = normctl(f"--token_file={token_file}", "list")
    assert listed.returncode == 0 and "c" in listed.stdout
    assert normctl(f"--token_file={token_file}", "health").returncode == 0


def test_plaintext_health_port_answers_probes_and_nothing_else(tmp_path):
    """Kubernetes' gRPC probes cannot speak TLS: --health_listen serves grpc.health.v1
    alone, in plaintext, while the API stays behind TLS and tokens."""
    import importlib.util
    import json

    import grpc
    from conftest import PYTHON_PACKAGE_DIR
    from normd.v1 import normd_pb2, normd_pb2_grpc

    # The generated health messages; their package path is shadowed by grpcio's.
    spec = importlib.util.spec_from_file_location(
        "health_pb2", Path(PYTHON_PACKAGE_DIR) / "grpc/health/v1/health_pb2.py")
    health_pb2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(health_pb2)

    certs = tmp_path / "certs"
    subprocess.run([str(MAKE_CERTS), str(certs)], check=True)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"admin {TOKENS['admin']}\n")
    server = NormdProcess(tmp_path / "data", flags=[
        f"--tls_cert_file={certs / 'server.pem'}", f"--tls_key_file={certs / 'server.key'}",
        f"--tokens_file={tokens}", "--health_listen=127.0.0.1:0"]).start()
    try:
        listening = json.loads(server.wait_for_stderr('"event":"listening"'))
        health_address = listening["health_address"]
        assert health_address and health_address != server.address
        channel = grpc.insecure_channel(health_address)
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString)
        reply = check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as error:
            normd_pb2_grpc.NormdStub(channel).ListDatasets(normd_pb2.ListDatasetsRequest(),
                                                           timeout=10)
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
        channel.close()
        # The main port still refuses plaintext.
        with normd.Client(server.address, timeout=5) as plaintext:
            with pytest.raises(normd.Unavailable):
                plaintext.list_datasets()
    finally:
        server.stop()


# ---- hostile local callers: another uid, a zero umask, unclaimed memory, descriptors ----

NOBODY = 65534


def run_as_nobody(script, *args):
    """Runs a Python script as uid/gid 65534 (setpriv), returning its JSON answer."""
    result = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
         "-c", textwrap.dedent(script), PYTHON_PACKAGE_DIR, *map(str, args)],
        capture_output=True, text=True, timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_normds_files_are_its_own_whatever_the_umask(tmp_path):
    os.chmod(tmp_path, 0o755)  # so that the modes below, not pytest's, are what guards
    server = NormdProcess(tmp_path / "data", preexec_fn=lambda: os.umask(0)).start()
    try:
        with normd.Client(server.address) as client:
            client.create_dataset("tabular", layout="NC", channels=2)
            client.fit("tabular", [np.ones((4, 2))])
            socket_path = client._handoff_socket()
        data = tmp_path / "data"
        assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o600
        for root, dirs, files in os.walk(data):
            for name in dirs + files:
                mode = stat.S_IMODE(os.lstat(os.path.join(root, name)).st_mode)
                assert mode & 0o077 == 0, f"{name} is {oct(mode)}"
    finally:
        server.stop()


def test_another_user_can_neither_see_use_nor_drop_a_region(tmp_path):
    os.chmod(tmp_path, 0o755)
    server = NormdProcess(tmp_path / "data").start()
    try:
        check_regions_are_private(server)
    finally:
        server.stop()


def check_regions_are_private(normd_server):
    with normd.Client(normd_server.address) as client:
        client.create_dataset("tabular", layout="NC", channels=2)
        client.fit("tabular", [np.arange(8.0).reshape(4, 2)])
        client.freeze("tabular")
        pool = client.shared_pool(1 << 16)
        x = pool.array((4, 2), np.float64)
        x[...] = 3.0
        region = pool.buffer.name
        answers = run_as_nobody("""
            import json, sys
            sys.path.insert(0, sys.argv[1])
            import grpc
            from normd.v1 import normd_pb2 as pb, normd_pb2_grpc as rpc
            stub = rpc.NormdStub(grpc.insecure_channel(sys.argv[2]))
            def code(call, request):
                try:
                    call(request, timeout=30)
                    return "OK"
                except grpc.RpcError as error:
                    return error.code().name
            listed = stub.ListRegions(pb.ListRegionsRequest(), timeout=30)
            request = pb.NormalizeRequest(scale=pb.Scale(factor=2.0))
            request.input.shape[:] = [4, 2]
            request.input.dtype = pb.DTYPE_FLOAT64
            request.input.region.name = sys.argv[3]
            try:
                open(listed.handoff_socket, "rb")
                socket_reachable = True
            except OSError:
                socket_reachable = False
            print(json.dumps({
                "listed": [r.name for r in listed.regions],
                "normalize": code(stub.Normalize, request),
                "unregister": code(stub.UnregisterRegion, pb.UnregisterRegionRequest(name=sys.argv[3])),
                "socket_reachable": socket_reachable}))
        """, normd_server.address, region)
        assert answers == {"listed": [], "normalize": "NOT_FOUND", "unregister": "NOT_FOUND",
                           "socket_reachable": False}
        # Root's region is untouched and still serves its owner.
        assert [r.name for r in client.regions().regions] == [region]
        np.testing.assert_array_equal(client.scale(x, factor=2.0), np.full((4, 2), 6.0))


def hand_over(socket_path, nbytes):
    """Hands a sparse memfd of `nbytes` (sealed against shrinking) over on a new
    connection, as a client would, and never claims it: (the connection, the answer)."""
    fd = os.memfd_create("unclaimed", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        os.ftruncate(fd, nbytes)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
        connection.connect(socket_path)
        socket.send_fds(connection, [b"region"], [fd])
        return connection, connection.recv(512).decode()
    finally:
        os.close(fd)


def address_space_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(status.read().split("VmSize:")[1].split()[0])


def test_unclaimed_regions_count_against_their_users_limits(tmp_path):
    """Memfds handed over and never claimed cost the server address space as claimed
    ones do: they count against --max_region_bytes_per_caller and
    --max_regions_per_caller for the uid that sent them, checked before mapping."""
    server = NormdProcess(tmp_path / "data", flags=["--max_region_bytes_per_caller=1073741824",
                                                    "--max_regions_per_caller=6"]).start()
    held = []
    try:
        with normd.Client(server.address) as client:
            path = client._handoff_socket()
            before = address_space_kib(server.proc.pid)
            _, answer = hand_over(path, 1 << 40)  # a 1 TiB sparse memfd
            assert answer.startswith("ERR a 1099511627776-byte region would bring uid 0"), answer
            assert "--max_region_bytes_per_caller" in answer
            for _ in range(3):
                held.append(hand_over(path, 256 << 20))
                assert held[-1][1].startswith("OK "), held[-1][1]
            _, answer = hand_over(path, 512 << 20)  # 768 MiB unclaimed + 512 > 1 GiB
            assert answer.startswith("ERR") and "it has 805306368" in answer, answer
            for _ in range(3):
                held.append(hand_over(path, 4096))
                assert held[-1][1].startswith("OK "), held[-1][1]
            _, answer = hand_over(path, 4096)  # a seventh
            assert "already has 6 regions handed over and not claimed" in answer, answer
            # 768 MiB of regions mapped, and none of the refused terabyte (a sanitizer's
            # allocator may reserve some more address space meanwhile).
            grown = address_space_kib(server.proc.pid) - before
            assert grown < 8 << 20, f"the address space grew {grown} KiB"
            # Closed connections give their share back; the client's own way still works.
            for connection, _ in held:
                connection.close()
            held.clear()
            buffer = client.shared_buffer(512 << 20)
            assert [r.name for r in client.regions().regions] == [buffer.name]
            buffer.close()
    finally:
        for connection, _ in held:
            connection.close()
        server.stop()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat_file:
        fields = stat_file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_handoff_connections_leave_descriptors_to_grpc_and_never_spin(tmp_path):
    """Under a small descriptor limit (128, hard and soft) the handoff socket takes at
    most a quarter of it, each process an eighth of that; out of descriptors, a waiting
    handoff connection is refused with a reason and the listener rests instead of
    spinning, and serves again once descriptors are back. (Debian's gRPC 1.51 stops
    accepting for good once its accept fails with EMFILE, grpc/grpc#20418: only the
    connections made before the flood outlive it, hence normd's raised soft limit.)"""
    limit = 128

    def small_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    server = NormdProcess(tmp_path / "data", preexec_fn=small_limit).start()
    connections, flood = [], []
    try:
        with normd.Client(server.address) as client:
            path = client._handoff_socket()
            # One process: 4 connections (an eighth of the quarter), then refused.
            for _ in range(5):
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                connection.connect(path)
                connections.append(connection)
            assert connections[-1].recv(512).decode() == (
                f"ERR process {os.getpid()} already holds 4 region connections, its share; "
                "one is enough")
            # Another process of the same user is still served.
            answers = run_in_child(textwrap.dedent("""
                import json, sys
                sys.path.insert(0, sys.argv[1])
                import normd
                with normd.Client(sys.argv[2]) as client:
                    buffer = client.shared_buffer(4096)
                    print(json.dumps([r.name for r in client.regions().regions]))
            """), server.address)
            assert len(answers) == 1
            # Raw TCP connections to the gRPC port take the rest of normd's descriptors.
            host, port = server.address.rsplit(":", 1)
            refused = None
            for connection in connections:
                connection.close()
            connections.clear()
            for _ in range(2 * limit):
                flood.append(socket.create_connection((host, int(port))))
            # gRPC takes each connection's descriptor when it gets round to accepting it
            # (backing off when it finds none): probe once normd holds all it may.
            deadline = time.monotonic() + 120
            while refused is None:
                assert time.monotonic() < deadline, "normd never ran out of descriptors"
                if len(os.listdir(f"/proc/{server.proc.pid}/fd")) >= limit:
                    refused = probe(path) or None
            assert refused == "ERR the server is out of file descriptors; try again later"
            # Starved, the listener rests (a spinning accept loop burns a whole core).
            for _ in range(8):
                waiting = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                waiting.connect(path)
                connections.append(waiting)
            spent = cpu_seconds(server.proc.pid)
            time.sleep(2.0)  # a window to measure in, not a synchronisation
            assert cpu_seconds(server.proc.pid) - spent < 1.0
            for sock in flood + connections:
                sock.close()
            flood.clear()
            connections.clear()
            # Descriptors back (normd closes the flood's connections as they end), the
            # handoff socket serves again, registering over the connection made before.
            deadline = time.monotonic() + 60
            while len(os.listdir(f"/proc/{server.proc.pid}/fd")) > limit // 2:
                assert time.monotonic() < deadline, "normd kept the flood's descriptors"
            with client.shared_buffer(4096) as buffer:
                assert [r.name for r in client.regions().regions] == [buffer.name]
    finally:
        for sock in connections + flood:
            sock.close()
        server.stop()


def probe(socket_path):
    """Connects to the handoff socket and sends nothing: the refusal the server sends
    at accept, or "" when it accepted (and then saw the connection close)."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        connection.connect(socket_path)
        connection.shutdown(socket.SHUT_WR)
        return connection.recv(512).decode()
    finally:
        connection.close()


def run_in_child(script, *args):
    """Runs a Python script in a child process of this user, returning its JSON answer."""
    result = subprocess.run([sys.executable, "-c", script, PYTHON_PACKAGE_DIR, *map(str, args)],
                            capture_output=True, text=True, timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_without_tokens_each_local_user_has_its_own_share_of_ingest_streams(tmp_path):
    """Without tokens a local caller's share of the Ingest slots is its user's: root
    holding its two streams (--max_ingests_per_caller=2) does not lock uid 65534 out,
    though both come from 127.0.0.1."""
    os.chmod(tmp_path, 0o755)
    server = NormdProcess(tmp_path / "data", flags=["--max_ingests_per_caller=2",
                                                    "--http_listen=127.0.0.1:0"]).start()
    release = threading.Event()
    held = []
    try:
        with normd.Client(server.address) as client:
            client.create_dataset("shared", layout="NC", channels=2)
        stub = normd_pb2_grpc.NormdStub(grpc.insecure_channel(server.address))
        batch = np.ones((4, 2))

        request = pb.IngestRequest(dataset="shared", split=pb.SPLIT_TRAIN,
                                   batch=pb.Tensor(shape=[4, 2], dtype=pb.DTYPE_FLOAT64,
                                                   data=batch.tobytes()))

        def one_batch_then_wait():
            yield request
            release.wait()

        for _ in range(2):
            held.append(stub.Ingest.future(one_batch_then_wait(), timeout=120))
        wait_for_sample(metrics_url(server), "normd_ingest_streams_active", 2)
        with pytest.raises(grpc.RpcError) as third:  # root's third is over its share
            stub.Ingest(iter([request]), timeout=30)
        assert third.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "this caller already has 2 Ingest streams open" in third.value.details()
        answer = run_as_nobody("""
            import json, sys
            sys.path.insert(0, sys.argv[1])
            import numpy as np
            import normd
            with normd.Client(sys.argv[2], timeout=60) as client:
                print(json.dumps(client.fit("shared", [np.ones((4, 2))], local=False).batches))
        """, server.address)
        assert answer == 1
        release.set()
        for future in held:
            assert future.result().batches == 1
    finally:
        release.set()
        server.stop()
