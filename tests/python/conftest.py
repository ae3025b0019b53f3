"""Fixtures that run the real normd binary on an ephemeral loopback port."""
import json
import os
import re
import signal
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest

NORMD_BIN = os.path.abspath(os.environ.get("NORMD_BIN", "build/normd"))
NORMCTL_BIN = os.path.abspath(os.environ.get("NORMCTL_BIN", "build/normctl"))
# The Python client and its generated stubs, as the build lays them out.
PYTHON_PACKAGE_DIR = os.path.abspath(os.environ.get("NORMD_PYTHON_STUBS", "build/python"))
sys.path.insert(0, PYTHON_PACKAGE_DIR)


class NormdProcess:
    """A normd process; its address is read from the line it prints once it serves."""

    def __init__(self, data_dir, wrapper=(), preexec_fn=None, flags=()):
        """`wrapper` is a command prefix (say, nsenter into a namespace), `preexec_fn`
        runs in the child before normd starts (say, setrlimit), `flags` go to normd."""
        self.data_dir = data_dir
        self.wrapper = list(wrapper)
        self.flags = list(flags)
        self.preexec_fn = preexec_fn
        self.proc = None
        self.address = None
        self._stderr_lines = []
        self._stderr_changed = threading.Condition()
        self._stderr_closed = False

    def command(self, listen):
        flags = list(self.flags)
        if not any(flag.startswith("--region_socket") for flag in flags):
            # A Unix socket path holds at most 107 bytes; pytest's directories are long.
            if getattr(self, "_socket_dir", None) is None:
                self._socket_dir = tempfile.mkdtemp(prefix="normd-", dir="/tmp")
            flags.append(f"--region_socket={self._socket_dir}/regions.sock")
        return [*self.wrapper, NORMD_BIN, f"--listen={listen}", f"--data_dir={self.data_dir}",
                *flags]

    def start(self):
        """Starts normd on a free port, or again on the same address after a stop."""
        listen = self.address or "127.0.0.1:0"
        self.proc = subprocess.Popen(
            self.command(listen), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=self.preexec_fn)
        line = self.proc.stdout.readline()  # blocks until the server is listening
        match = re.search(r"listening on (\S+)", line)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"normd did not start: {line!r} {self.proc.stderr.read()}")
        self.address = match.group(1)
        # normd logs a line per RPC: drain its stderr, or a full pipe would block it.
        self._stderr_lines, self._stderr_closed = [], False
        threading.Thread(target=self._drain_stderr, args=(self.proc.stderr,), daemon=True).start()
        return self

    def _drain_stderr(self, stream):
        for line in stream:
            with self._stderr_changed:
                self._stderr_lines.append(line)
                self._stderr_changed.notify_all()
        with self._stderr_changed:
            self._stderr_closed = True
            self._stderr_changed.notify_all()

    def stderr_lines(self):
        """What normd has written to stderr so far, a line each."""
        with self._stderr_changed:
            return list(self._stderr_lines)

    def start_failure(self):
        """Starts normd where it must refuse to start; returns (exit code, stderr)."""
        result = subprocess.run(self.command("127.0.0.1:0"), capture_output=True, text=True,
                                timeout=60, preexec_fn=self.preexec_fn)
        assert "listening on" not in result.stdout, "normd started where it must not"
        return result.returncode, result.stderr

    def wait_for_stderr(self, fragment, timeout=60):
        """Waits for the first stderr line holding `fragment` and returns it."""
        def found():
            return next((line for line in self._stderr_lines if fragment in line), None)
        with self._stderr_changed:
            self._stderr_changed.wait_for(lambda: found() or self._stderr_closed, timeout=timeout)
            line = found()
        if line is None:
            raise AssertionError(f"normd did not print {fragment!r}")
        return line

    def kill(self):
        """SIGKILL: no drain, no flush; what was acknowledged must still be on disk."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=30) == 0
        self.proc = None
        if getattr(self, "_socket_dir", None) is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None


def listening_event(server):
    """The structured line normd logs once it serves, as a dict."""
    return json.loads(server.wait_for_stderr('"event":"listening"'))


def metrics_url(server):
    """The /metrics URL of a normd started with --metrics_listen."""
    return f"http://{listening_event(server)['metrics_address']}/metrics"


def scrape(url):
    """Parses the text exposition format into {(name, frozenset(labels)): value}."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = reply.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r'(\w+)(?:\{(.*)\})? (\S+)', line)
        assert match, f"not an exposition line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for_sample(url, name, value, timeout=60, **labels):
    """Scrapes `url` until the sample reads `value`: how a test learns what the server
    itself has begun, such as serving a stream, rather than what a client has sent."""
    deadline = time.monotonic() + timeout
    while (got := sample(scrape(url), name, **labels)) != value:
        assert time.monotonic() < deadline, f"{name} stayed {got}, expected {value}"
        time.sleep(0.01)  # the poll interval


def refused_summary(client, dataset, message):
    """Sends one hand-made MomentsSummary to `dataset`'s train split; it must be refused
    with INVALID_ARGUMENT, whose details this returns."""
    import grpc
    from normd.v1 import normd_pb2
    request = normd_pb2.IngestRequest(dataset=dataset, split=normd_pb2.SPLIT_TRAIN)
    request.summaries.summaries.append(message)
    with pytest.raises(grpc.RpcError) as error:
        client._stub.Ingest(iter([request]))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value
    return error.value.details()


@pytest.fixture
def normd(tmp_path):
    server = NormdProcess(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture
def normctl(normd):
    """Runs normctl against the fixture's server; returns the CompletedProcess."""
    def run(*args, check=True):
        result = subprocess.run([NORMCTL_BIN, f"--server={normd.address}", *map(str, args)],
                                capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"normctl {args} failed: {result.stderr}")
        return result
    return run


@pytest.fixture
def client(normd):
    """The Python client (client/python/normd) connected to the fixture's server."""
    import normd as normd_client
    with normd_client.Client(normd.address, timeout=120) as connected:
        yield connected
