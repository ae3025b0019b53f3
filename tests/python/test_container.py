"""The real container image: the Dockerfile built by podman (scripts/podman.sh), run as a
user would run it (a volume, health, fit, freeze, normalise, SIGTERM, a restart on the same
volume), then three containers of it sharing a three-member etcd. Each container is a
`podman run` process of this test's, stopped by its pid (podman passes the signal on).

Needs podman, runc and debootstrap (scripts/install-deps.sh test installs them) and root;
skipped without them. The image build is the slow part (a Release build of normd inside);
NORMD_CONTAINER_IMAGE=normd:latest reuses an image built before."""
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import urllib.request
import uuid

import numpy as np
import pytest

import normd
from etcd_cluster import ETCD_BIN, EtcdCluster, free_ports

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PODMAN = os.path.join(REPO, "scripts", "podman.sh")

pytestmark = pytest.mark.skipif(
    shutil.which("podman") is None or shutil.which("debootstrap") is None or os.geteuid() != 0,
    reason="needs podman, debootstrap and root")


def podman(*args, timeout=120, check=True):
    return subprocess.run([PODMAN, *args], capture_output=True, text=True, timeout=timeout,
                          check=check)


@pytest.fixture(scope="module")
def image():
    if os.environ.get("NORMD_CONTAINER_IMAGE"):
        return os.environ["NORMD_CONTAINER_IMAGE"]
    podman("base", timeout=900)
    built = podman("build", timeout=2400, check=False)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    return "normd:latest"


def healthcheck_command():
    """The shell command of the Dockerfile's HEALTHCHECK."""
    dockerfile = open(os.path.join(REPO, "Dockerfile")).read()
    command = json.loads(re.search(r"^\s+CMD (\[.*\])$", dockerfile, re.MULTILINE)[1])
    assert command[:2] == ["sh", "-c"]
    return command[2]


class Container:
    """`podman run` in the foreground: its stdout is normd's, so the first line says
    where it listens, as with a normd started directly."""

    def __init__(self, image, volume, env):
        self.name = f"normd-test-{uuid.uuid4().hex[:8]}"
        self.command = [PODMAN, "run", "--rm", "--name", self.name, "--network=host",
                        "-v", f"{volume}:/data", *[f"-e{k}={v}" for k, v in env.items()], image]
        self.proc, self.address, self.log = None, None, []

    def start(self):
        self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        if not match:
            self.proc.kill()
            raise AssertionError(f"the container did not serve: {line!r} {self.proc.stderr.read()}")
        self.address = match.group(1)
        threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True).start()
        return self

    def stop(self):
        """SIGTERM to podman, which hands it to normd: it drains and exits 0."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)


def test_the_image_runs_as_a_user_would_run_it(image, tmp_path):
    assert podman("run", "--rm", "--entrypoint", "id", image, "-u").stdout.strip() == "10001"
    volume = f"normd-test-{uuid.uuid4().hex[:8]}"
    grpc_port, metrics_port = free_ports(2)
    env = {"NORMD_LISTEN": f"127.0.0.1:{grpc_port}", "NORMD_HTTP_LISTEN":
           f"127.0.0.1:{metrics_port}"}
    try:
        first = Container(image, volume, env).start()
        # The image's own HEALTHCHECK command, as the engine runs it.
        env_health = podman("exec", "-e", f"NORMCTL_HEALTH_SERVER={first.address}", first.name,
                            "sh", "-c", healthcheck_command(), check=False)
        assert env_health.returncode == 0 and env_health.stdout.strip() == "SERVING", env_health
        rng = np.random.default_rng(3)
        x = rng.normal(loc=10.0, scale=3.0, size=(256, 5))
        with normd.Client(first.address) as client:
            client.create_dataset("in-a-box", layout="NC", channels=5)
            client.fit("in-a-box", [x[:128], x[128:]], writer_id="w")
            version = client.freeze("in-a-box")
            served = np.array(client.zscore(x, "in-a-box", version=version,
                                            output_dtype="float64"))
        np.testing.assert_allclose(served, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5),
                                   rtol=1e-12, atol=1e-12)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                    timeout=10) as reply:
            assert "\nnormd_datasets 1\n" in reply.read().decode()
        # The store is on the volume, owned by the image's user.
        owner = podman("exec", first.name, "stat", "-c", "%u", "/data/db")
        assert owner.stdout.strip() == "10001"
        assert first.stop() == 0

        second = Container(image, volume, env).start()  # the same volume, a new container
        with normd.Client(second.address) as client:
            assert client.get_dataset("in-a-box").latest_version == version
            again = client.zscore(x, "in-a-box", version=version, output_dtype="float64")
            assert np.array_equal(again, served)
            resent = client.fit("in-a-box", [x[:128], x[128:]], writer_id="w")
            assert resent.duplicate_batches == 2
        assert second.stop() == 0
    finally:
        podman("volume", "rm", "-f", volume, check=False)


@pytest.mark.skipif(ETCD_BIN is None, reason="etcd-server is not installed")
def test_three_containers_share_one_etcd(image, tmp_path):
    cluster = EtcdCluster(str(tmp_path / "etcd")).start()
    containers, volumes = [], []
    try:
        for _ in range(3):
            volumes.append(f"normd-test-{uuid.uuid4().hex[:8]}")
            (port,) = free_ports(1)
            containers.append(Container(image, volumes[-1], {
                "NORMD_LISTEN": f"127.0.0.1:{port}", "NORMD_HTTP_LISTEN": "",
                "NORMD_STORE": cluster.store_flag.split("=", 1)[1],
                "NORMD_REGION_SOCKET": "off"}).start())
        clients = [normd.Client(c.address) for c in containers]
        rng = np.random.default_rng(4)
        x = rng.normal(size=(300, 3))
        clients[0].create_dataset("shared", layout="NC", channels=3)
        for i in range(3):  # each container takes one writer's batches
            clients[i].fit("shared", [x[100 * i:100 * i + 100]], writer_id=f"w{i}")
        version = clients[1].freeze("shared")
        stats = [c.stats("shared", version=version) for c in clients]
        for s in stats:
            assert s.count[0] == 300
            assert np.array_equal(s.mean, stats[0].mean)
        np.testing.assert_allclose(stats[0].mean, x.mean(0), rtol=1e-12)
        y = clients[2].zscore(x, "shared", version=version, output_dtype="float64")
        np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-12,
                                   atol=1e-12)
        for client in clients:
            client.close()
        assert [c.stop() for c in containers] == [0, 0, 0]
    finally:
        for c in containers:
            if c.proc.poll() is None:
                c.proc.kill()
        for volume in volumes:
            podman("volume", "rm", "-f", volume, check=False)
        cluster.stop()
