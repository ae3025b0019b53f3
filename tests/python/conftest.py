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


# Every normd a test started, so that the test's teardown stops what is left by its pid
# and a failed test's report shows what each one printed and how it ended.
_STARTED = []


class _Run:
    """One start of a NormdProcess."""

    def __init__(self, pid):
        self.pid, self.lines, self.closed = pid, [], False


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
        # One _Run per start: its pid, the lines it printed to stderr, and whether they ended.
        self._runs = []
        self._stderr_changed = threading.Condition()

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
        if self not in _STARTED:
            _STARTED.append(self)
        # normd logs a line per RPC: drain its stderr, or a full pipe would block it. Each
        # run keeps its own lines, so a failed test's report shows the earlier runs too.
        run = _Run(self.proc.pid)
        with self._stderr_changed:
            self._runs.append(run)
        threading.Thread(target=self._drain_stderr, args=(self.proc.stderr, run),
                         daemon=True).start()
        return self

    def _drain_stderr(self, stream, run):
        for line in stream:
            with self._stderr_changed:
                run.lines.append(line)
                self._stderr_changed.notify_all()
        with self._stderr_changed:
            run.closed = True
            self._stderr_changed.notify_all()

    def stderr_lines(self):
        """What the latest run of normd has written to stderr so far, a line each."""
        with self._stderr_changed:
            return list(self._runs[-1].lines) if self._runs else []

    def stderr_of_every_run(self):
        """What every run of this normd has written, each after a line naming its pid."""
        with self._stderr_changed:
            return [line for run in self._runs
                    for line in [f"--- normd started (pid {run.pid}) ---\n", *run.lines]]

    def start_failure(self):
        """Starts normd where it must refuse to start; returns (exit code, stderr)."""
        result = subprocess.run(self.command("127.0.0.1:0"), capture_output=True, text=True,
                                timeout=60, preexec_fn=self.preexec_fn)
        assert "listening on" not in result.stdout, "normd started where it must not"
        return result.returncode, result.stderr

    def wait_for_stderr(self, fragment, timeout=60):
        """Waits for the first stderr line holding `fragment` and returns it."""
        run = self._runs[-1]

        def found():
            return next((line for line in run.lines if fragment in line), None)
        with self._stderr_changed:
            self._stderr_changed.wait_for(lambda: found() or run.closed, timeout=timeout)
            line = found()
        if line is None:
            raise AssertionError(f"normd did not print {fragment!r}")
        return line

    def _assert_running(self):
        """A normd that died by itself (a crash, a sanitizer's report) fails the test here,
        with what it printed, not later as a client that waits for it."""
        code = self.proc.poll()
        assert code is None, (f"normd at {self.address} exited {code} before the test stopped "
                              "it:\n" + "".join(self.stderr_lines()[-40:]))

    def kill(self):
        """SIGKILL: no drain, no flush; what was acknowledged must still be on disk."""
        self._assert_running()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self):
        if self.proc:
            self._assert_running()
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=30) == 0
        self.proc = None
        if getattr(self, "_socket_dir", None) is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None


def run_python_snippet(address, script, cwd=None):
    """Runs a documented Python snippet as a script against the normd at `address`: the
    docs' default address stands for it, and so does $NORMD_SERVER; the package is the
    build's. Returns the CompletedProcess."""
    env = dict(os.environ, NORMD_SERVER=address,
               PYTHONPATH=os.pathsep.join([PYTHON_PACKAGE_DIR, os.environ.get("PYTHONPATH", "")]))
    script = script.replace("127.0.0.1:50051", address)
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report ends with each normd it started: its address, how it ended
    (or that it still runs) and the last lines it printed, since a server that died or
    hung is otherwise seen only as UNAVAILABLE in the client."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _STARTED:
        for server in _STARTED:
            state = "running" if server.proc and server.proc.poll() is None else (
                f"exited {server.proc.returncode}" if server.proc else "stopped")
            tail = "".join(server.stderr_of_every_run()[-60:])
            report.sections.append((f"normd at {server.address} ({state}), its last stderr lines",
                                    tail or "(nothing)"))


@pytest.fixture(autouse=True)
def stop_started_normd():
    """Stops by pid every normd the test left running (a failed assertion skips the
    test's own stop)."""
    yield
    while _STARTED:
        server = _STARTED.pop()
        if server.proc and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=30)


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
