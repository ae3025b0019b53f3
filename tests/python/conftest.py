"""Fixtures that run the real normd binary on an ephemeral loopback port."""
import os
import re
import signal
import subprocess
import sys

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

    def command(self, listen):
        return [*self.wrapper, NORMD_BIN, f"--listen={listen}", f"--data_dir={self.data_dir}",
                *self.flags]

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
        return self

    def start_failure(self):
        """Starts normd where it must refuse to start; returns (exit code, stderr)."""
        result = subprocess.run(self.command("127.0.0.1:0"), capture_output=True, text=True,
                                timeout=60, preexec_fn=self.preexec_fn)
        assert "listening on" not in result.stdout, "normd started where it must not"
        return result.returncode, result.stderr

    def wait_for_stderr(self, fragment):
        """Reads normd's stderr up to the first line holding `fragment`."""
        for line in self.proc.stderr:
            if fragment in line:
                return line
        raise AssertionError(f"normd exited without printing {fragment!r}")

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
