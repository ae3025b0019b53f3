"""A real etcd cluster (Debian's etcd-server) on loopback ports, for the tests of normd
replicas that share one. Members are separate processes, stopped by pid."""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading

ETCD_BIN = shutil.which("etcd")
ETCDCTL_BIN = shutil.which("etcdctl")


def free_ports(count):
    """Ports the kernel hands out now; bound and released together so they differ."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class EtcdMember:
    def __init__(self, name, data_dir, client_port, peer_port, initial_cluster, tls=None):
        """`tls`: a directory of tests/support/make_certs.sh's files; clients then speak
        https and must present a certificate the test CA signed."""
        self.name, self.data_dir, self.tls = name, data_dir, tls
        self.client_url = f"{'https' if tls else 'http'}://127.0.0.1:{client_port}"
        self.peer_url = f"http://127.0.0.1:{peer_port}"
        self.initial_cluster = initial_cluster
        self.proc = None
        self._ready = threading.Event()

    def start(self, state="new"):
        self._ready.clear()
        self.proc = subprocess.Popen(
            [ETCD_BIN, "--name", self.name, "--data-dir", self.data_dir,
             "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
             "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
             "--initial-cluster", self.initial_cluster, "--initial-cluster-state", state,
             "--initial-cluster-token", "normd-test",
             # Elections in a tenth of the default time: failover tests stay short.
             "--heartbeat-interval", "50", "--election-timeout", "500",
             *([] if self.tls is None else [
                 "--cert-file", f"{self.tls}/server.pem", "--key-file", f"{self.tls}/server.key",
                 "--client-cert-auth", "--trusted-ca-file", f"{self.tls}/ca.pem"])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()
        return self

    def _drain(self, stream):
        for line in stream:
            if "ready to serve client requests" in line:
                self._ready.set()

    def wait_ready(self, timeout=60):
        assert self._ready.wait(timeout), f"etcd member {self.name} did not become ready"

    def kill(self):
        """SIGKILL, as a crash: no goodbye to its peers."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None

    def running(self):
        return self.proc is not None


class EtcdCluster:
    """`size` members that form one cluster; `store_flag` is normd's --store for it."""

    def __init__(self, root, size=3, tls=None):
        ports = free_ports(2 * size)
        names = [f"m{i}" for i in range(size)]
        initial = ",".join(f"{n}=http://127.0.0.1:{ports[2 * i + 1]}" for i, n in enumerate(names))
        self.tls = tls
        self.members = [EtcdMember(n, os.path.join(root, n), ports[2 * i], ports[2 * i + 1], initial,
                                   tls) for i, n in enumerate(names)]

    def start(self):
        for member in self.members:
            member.start()
        for member in self.members:
            member.wait_ready()
        return self

    def stop(self):
        for member in self.members:
            member.stop()

    @property
    def store_flag(self):
        return "--store=etcd:" + ",".join(m.client_url for m in self.members)

    def endpoints(self):
        return ",".join(m.client_url for m in self.members if m.running())

    def status(self):
        """etcdctl's view of every running member: {member name: status dict}."""
        out = subprocess.run([ETCDCTL_BIN, "--endpoints", self.endpoints(), "endpoint", "status",
                              "--write-out=json"], capture_output=True, text=True, timeout=30,
                             env={**os.environ, "ETCDCTL_API": "3"})
        statuses = json.loads(out.stdout) if out.stdout.strip() else []
        by_url = {s["Endpoint"]: s["Status"] for s in statuses}
        return {m.name: by_url[m.client_url] for m in self.members if m.client_url in by_url}

    def leader(self):
        """The member that leads now (asked of etcd itself)."""
        for name, status in self.status().items():
            if status["header"]["member_id"] == status["leader"]:
                return next(m for m in self.members if m.name == name)
        raise AssertionError("no etcd member says it leads")

    def etcdctl(self, *args):
        """etcdctl against the running members (with the test client's certificate)."""
        tls = [] if self.tls is None else [
            "--cacert", f"{self.tls}/ca.pem", "--cert", f"{self.tls}/client.pem",
            "--key", f"{self.tls}/client.key"]
        return subprocess.run([ETCDCTL_BIN, "--endpoints", self.endpoints(), *tls, *args],
                              check=True, capture_output=True, text=True, timeout=30,
                              env={**os.environ, "ETCDCTL_API": "3"})
