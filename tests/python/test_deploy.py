"""Offline validation of what ships for deployment: the Kubernetes manifests against
the Kubernetes API's own schema (the models of Debian's python3-kubernetes), the
compose file with docker-compose, the Prometheus configuration with promtool, every
YAML file with yamllint, and the Dockerfile's runtime packages against the shared
libraries the built binaries load. No cluster and no container engine run here."""
import os
import re
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import NORMCTL_BIN, NORMD_BIN, PYTHON_PACKAGE_DIR

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"


def documents(path):
    with open(path) as file:
        return [doc for doc in yaml.safe_load_all(file) if doc is not None]


def manifests():
    """Every Kubernetes object the kustomization applies, plus the example secrets."""
    kustomization = documents(K8S / "kustomization.yaml")[0]
    files = [K8S / name for name in kustomization["resources"]] + [K8S / "secrets.example.yaml"]
    return [doc for path in files for doc in documents(path)]


def by_kind(kind):
    return [doc for doc in manifests() if doc["kind"] == kind]


# ---- schema ------------------------------------------------------------------------
# The Kubernetes API's types as python3-kubernetes generates them from the API's
# OpenAPI document (release 22 = Kubernetes 1.22). gRPC probes came in 1.24 (GA in
# 1.27); that one type is added here by hand, exactly as the 1.27 API defines it.
GRPC_ACTION = {"port": ("int", True), "service": ("str", False)}
API_MODELS = {("v1", "ConfigMap"): "V1ConfigMap", ("v1", "Service"): "V1Service",
              ("v1", "Secret"): "V1Secret", ("apps/v1", "StatefulSet"): "V1StatefulSet"}


def validate(value, type_name, path, errors):
    """Checks `value` (parsed YAML) against a python3-kubernetes type name."""
    from kubernetes.client import models

    if type_name == "object":  # IntOrString, quantities, raw JSON
        if not isinstance(value, (str, int)):
            errors.append(f"{path}: expected a string or an integer, got {value!r}")
        return
    scalar = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str}
    if type_name in scalar:
        ok = isinstance(value, scalar[type_name]) and not (
            type_name == "int" and isinstance(value, bool))
        if not ok:
            errors.append(f"{path}: expected {type_name}, got {value!r}")
        return
    if match := re.fullmatch(r"list\[(.+)\]", type_name):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {value!r}")
            return
        for index, item in enumerate(value):
            validate(item, match.group(1), f"{path}[{index}]", errors)
        return
    if match := re.fullmatch(r"dict\(str, (.+)\)", type_name):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map, got {value!r}")
            return
        for key, item in value.items():
            validate(item, match.group(1), f"{path}.{key}", errors)
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a {type_name} object, got {value!r}")
        return
    model = getattr(models, type_name)
    fields = {json_key: attribute for attribute, json_key in model.attribute_map.items()}
    present = {}
    for key, item in value.items():
        if type_name == "V1Probe" and key == "grpc":
            validate_grpc_action(item, f"{path}.grpc", errors)
            continue
        if key not in fields:
            errors.append(f"{path}: unknown field {key!r} in {type_name}")
            continue
        validate(item, model.openapi_types[fields[key]], f"{path}.{key}", errors)
        present[fields[key]] = item
    # The generated setters refuse a missing required field and values outside an enum.
    try:
        model(**present)
    except ValueError as error:
        errors.append(f"{path}: {error}")


def validate_grpc_action(value, path, errors):
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a GRPCAction object")
        return
    for key in value:
        if key not in GRPC_ACTION:
            errors.append(f"{path}: unknown field {key!r} in GRPCAction")
    for key, (type_name, required) in GRPC_ACTION.items():
        if key in value:
            validate(value[key], type_name, f"{path}.{key}", errors)
        elif required:
            errors.append(f"{path}: GRPCAction needs {key!r}")


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_matches_the_kubernetes_api_schema(doc):
    errors = []
    validate(doc, API_MODELS[(doc["apiVersion"], doc["kind"])], doc["kind"], errors)
    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_what_it_should():
    """The validator itself: a misspelt field, a wrong type, a missing required field
    and a malformed gRPC probe are each reported."""
    statefulset = by_kind("StatefulSet")[0]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    broken = [
        dict(container, imagePullPolcy="Always"),
        dict(container, ports=[{"containerPort": "50051"}]),
        {key: value for key, value in container.items() if key != "name"},
        dict(container, readinessProbe={"grpc": {"prot": 50052}}),
    ]
    for bad in broken:
        errors = []
        validate(bad, "V1Container", "container", errors)
        assert errors, bad


# ---- how the pieces fit ------------------------------------------------------------
def normd_flags():
    help_text = subprocess.run([NORMD_BIN, "--help"], capture_output=True, text=True,
                               timeout=30).stdout
    return set(re.findall(r"^\s+--(\w+) \(", help_text, re.MULTILINE))


def test_configuration_sets_only_real_flags():
    flags = normd_flags()
    config = by_kind("ConfigMap")[0]["data"]
    compose = documents(DEPLOY / "compose.yaml")[0]["services"]["normd"]["environment"]
    dockerfile_env = re.findall(r"\b(NORMD_\w+)=", (REPO / "Dockerfile").read_text())
    for variable in [*config, *compose, *dockerfile_env]:
        assert variable.startswith("NORMD_") and variable[6:].lower() in flags, variable
    # Everything a ConfigMap value says is a string, as the API requires.
    assert all(isinstance(value, str) for value in config.values())


def port_of(listen):
    return int(listen.rsplit(":", 1)[1])


def test_statefulset_service_configmap_and_secrets_agree():
    config = by_kind("ConfigMap")[0]
    service = by_kind("Service")[0]
    statefulset = by_kind("StatefulSet")[0]
    secrets = {doc["metadata"]["name"]: doc for doc in by_kind("Secret")}
    pod = statefulset["spec"]["template"]
    container = pod["spec"]["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    env = config["data"]

    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    assert ports == {"grpc": port_of(env["NORMD_LISTEN"]),
                     "health": port_of(env["NORMD_HEALTH_LISTEN"]),
                     "metrics": port_of(env["NORMD_METRICS_LISTEN"])}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == ports["health"], probe
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])

    # The Service finds the pods and names ports they have.
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    selector = service["spec"]["selector"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= set(ports)

    # Every mount has a volume; the store is the claim mounted at the data directory.
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    claims = {claim["metadata"]["name"] for claim in statefulset["spec"]["volumeClaimTemplates"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert set(mounts.values()) == set(volumes) | claims
    assert mounts[env["NORMD_DATA_DIR"]] in claims

    # The TLS and token files the flags name are keys of the mounted secrets.
    for variable in ("NORMD_TLS_CERT_FILE", "NORMD_TLS_KEY_FILE", "NORMD_TOKENS_FILE"):
        directory, key = env[variable].rsplit("/", 1)
        secret_name = volumes[mounts[directory]]["secret"]["secretName"]
        assert key in secrets[secret_name]["stringData"], variable

    # A drain finishes before the kubelet's SIGKILL.
    grace = int(env["NORMD_SHUTDOWN_GRACE_SECONDS"])
    assert pod["spec"]["terminationGracePeriodSeconds"] > grace
    # The pod runs as the image's user, never as root.
    dockerfile = (REPO / "Dockerfile").read_text()
    uid = re.search(r"--uid (\d+)", dockerfile).group(1)
    assert pod["spec"]["securityContext"]["runAsUser"] == int(uid)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    # Kernel threads leave a core of the CPU limit to gRPC.
    assert int(env["NORMD_KERNEL_THREADS"]) == int(container["resources"]["limits"]["cpu"]) - 1


def test_kustomization_lists_files_that_exist():
    kustomization = documents(K8S / "kustomization.yaml")[0]
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert set(kustomization) <= {"apiVersion", "kind", "labels", "resources", "namespace"}
    for name in kustomization["resources"]:
        assert (K8S / name).is_file(), name
    assert "secrets.example.yaml" not in kustomization["resources"]


# ---- the other tools' own validators -------------------------------------------------
def test_yaml_files_pass_yamllint():
    files = sorted(str(path) for path in DEPLOY.rglob("*.y*ml"))
    result = subprocess.run(["yamllint", "--strict", "-c", str(DEPLOY / ".yamllint"), *files],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_is_valid():
    result = subprocess.run(["docker-compose", "-f", str(DEPLOY / "compose.yaml"), "config",
                             "--quiet"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    compose = documents(DEPLOY / "compose.yaml")[0]
    normd = compose["services"]["normd"]
    grace = int(normd["environment"]["NORMD_SHUTDOWN_GRACE_SECONDS"])
    assert int(normd["stop_grace_period"].rstrip("s")) > grace
    # Prometheus scrapes the port normd serves metrics on, by the service's name.
    prometheus = documents(DEPLOY / "prometheus.yml")[0]
    [target] = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert target == f"normd:{port_of(normd['environment']['NORMD_METRICS_LISTEN'])}"


def test_prometheus_config_passes_promtool():
    result = subprocess.run(["promtool", "check", "config", str(DEPLOY / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- the image ---------------------------------------------------------------------
def owning_package(library):
    """The Debian package that ships `library` (a resolved path), usr-merge aware."""
    candidates = [library]
    if library.startswith("/usr/"):
        candidates.append(library[len("/usr"):])
    else:
        candidates.append("/usr" + library)
    for candidate in candidates:
        result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout.split(":")[0]
    raise AssertionError(f"no Debian package ships {library}")


def runtime_closure(packages):
    """`packages` and everything they depend on, as apt would install them."""
    result = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
         "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages],
        capture_output=True, text=True, timeout=120, check=True)
    return {line.strip().split(":")[0] for line in result.stdout.splitlines()
            if line and not line.startswith(" ")}


@pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd")
def test_image_runtime_packages_cover_what_the_binaries_load():
    dockerfile = (REPO / "Dockerfile").read_text()
    runtime_stage = dockerfile.split("FROM debian:bookworm-slim", 1)[1]
    install = re.search(r"apt-get install[^\n]*\\\n((?:\s+[\w.+-]+(?: [\w.+-]+)* \\\n)+)",
                        runtime_stage)
    listed = install.group(1).replace("\\", " ").split()
    installed = runtime_closure(listed)
    for binary in (NORMD_BIN, NORMCTL_BIN):
        if sanitizer_build():
            pytest.skip("a sanitizer build loads its own runtimes; the plain build is checked")
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
        for library in re.findall(r"=> (/\S+)", ldd):
            resolved = str(Path(library).resolve())
            package = owning_package(resolved)
            assert package in installed, (
                f"{Path(binary).name} loads {resolved} from {package}, which the image's "
                f"runtime stage does not install (it installs {listed})")


def test_the_binaries_are_where_the_image_scripts_and_readme_take_them():
    """The build puts normd and normctl at the top of its build directory, which is where
    the Dockerfile copies them from, run.sh starts normd and the README runs normctl."""
    build_dir = Path(PYTHON_PACKAGE_DIR).parent
    for binary, name in ((NORMD_BIN, "normd"), (NORMCTL_BIN, "normctl")):
        assert Path(binary) == build_dir / name, f"{name} is built at {binary}"
        assert f"/src/build/{name}" in (REPO / "Dockerfile").read_text()
    assert "exec build/normd " in (REPO / "scripts" / "run.sh").read_text()
    assert "normctl=build/normctl" in (REPO / "README.md").read_text()


def test_image_runs_as_a_non_root_user_with_its_store_on_a_volume():
    dockerfile = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert stages == ["debian:bookworm", "debian:bookworm-slim"]
    # The build stage runs CI's own install and build scripts.
    assert "RUN scripts/install-deps.sh build" in dockerfile
    assert "scripts/build.sh" in dockerfile
    runtime = dockerfile.split("FROM debian:bookworm-slim", 1)[1]
    user = re.search(r"^USER (\d+)", runtime, re.MULTILINE).group(1)
    assert int(user) != 0
    assert re.search(r"^VOLUME /data$", runtime, re.MULTILINE)
    env = dict(re.findall(r"(NORMD_\w+)=(\S+)", runtime))
    assert env["NORMD_DATA_DIR"] == "/data"
    exposed = set(map(int, re.search(r"^EXPOSE (.+)$", runtime, re.MULTILINE).group(1).split()))
    assert exposed == {port_of(env["NORMD_LISTEN"]), port_of(env["NORMD_METRICS_LISTEN"])}
    assert "health" in re.search(r"HEALTHCHECK[^\n]*\\\n.*", runtime).group(0)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


RUNTIME_STAGE = REPO / "tests" / "support" / "runtime_stage.sh"


def sanitizer_build():
    ldd = subprocess.run(["ldd", NORMD_BIN], capture_output=True, text=True, check=True).stdout
    return re.search(r"lib(asan|tsan|ubsan)\.so", ldd) is not None


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("debootstrap") is None,
                    reason="building a root file system needs root and debootstrap")
def test_runtime_stage_serves_as_the_image_would(tmp_path):
    """The Dockerfile's runtime stage, built with debootstrap and chroot (no container
    engine here): normd starts in it as uid 10001 with the image's environment, its
    store lands on /data, the image's HEALTHCHECK command passes, and a client and a
    scrape reach it; SIGTERM stops it with exit 0."""
    if sanitizer_build():
        pytest.skip("a sanitizer build loads its own runtimes; the plain build is checked")
    import json

    import normd

    subprocess.run([str(RUNTIME_STAGE), str(tmp_path), NORMD_BIN, NORMCTL_BIN], check=True,
                   timeout=900)
    rootfs = tmp_path / "rootfs"
    dockerfile = (REPO / "Dockerfile").read_text().split("FROM debian:bookworm-slim", 1)[1]
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    env = dict(re.findall(r"(NORMD_\w+)=(\S+)", dockerfile))
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.MULTILINE)[1])
    healthcheck = json.loads(re.search(r"^\s+CMD (\[.*\])$", dockerfile, re.MULTILINE)[1])
    # The image's environment, but on free ports: CI may have something on the fixed ones.
    api, metrics = free_ports(2)
    env.update(NORMD_LISTEN=f"0.0.0.0:{api}", NORMD_METRICS_LISTEN=f"0.0.0.0:{metrics}",
               NORMCTL_HEALTH_SERVER=f"127.0.0.1:{api}", PATH="/usr/local/bin:/usr/bin:/bin")
    as_image_user = ["chroot", f"--userspec={user[1]}:{user[2]}", str(rootfs), "env", "-i",
                     *(f"{key}={value}" for key, value in env.items())]
    server = subprocess.Popen([*as_image_user, *entrypoint], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        if "listening on" not in line:
            server.kill()
            pytest.fail(f"normd did not start in the runtime stage: {server.communicate()[1]}")
        health = subprocess.run([*as_image_user, *healthcheck], capture_output=True, text=True,
                                timeout=60)
        assert health.returncode == 0 and health.stdout.strip() == "SERVING", health
        with normd.Client(f"127.0.0.1:{api}", timeout=30) as client:
            client.create_dataset("in-image", layout="NC", channels=2)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10) as reply:
            assert "\nnormd_datasets 1\n" in reply.read().decode()
        store = rootfs / env["NORMD_DATA_DIR"].lstrip("/") / "db"
        assert store.is_dir() and store.stat().st_uid == int(user[1])
    finally:
        server.terminate()
        assert server.wait(timeout=60) == 0
