"""Offline validation of what ships for deployment: the Kubernetes manifests against
the Kubernetes API's own schema (the models of Debian's python3-kubernetes), the
compose file with docker-compose, the Prometheus configuration with promtool, every
YAML file with yamllint, and the Dockerfile's runtime packages against the shared
libraries the built binaries load. The image itself is built and run by podman in
test_container.py."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import NORMCTL_BIN, NORMD_BIN, PYTHON_PACKAGE_DIR

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
K8S_ETCD = DEPLOY / "k8s-etcd"


def documents(path):
    with open(path) as file:
        return [doc for doc in yaml.safe_load_all(file) if doc is not None]


def manifests(k8s=K8S):
    """Every Kubernetes object a kustomization applies, plus the example secrets (which
    the etcd variant shares)."""
    kustomization = documents(k8s / "kustomization.yaml")[0]
    files = [k8s / name for name in kustomization["resources"]] + [K8S / "secrets.example.yaml"]
    return [doc for path in files for doc in documents(path)]


def by_kind(kind, k8s=K8S):
    return [doc for doc in manifests(k8s) if doc["kind"] == kind]


# ---- schema ------------------------------------------------------------------------
# The Kubernetes API's types as python3-kubernetes generates them from the API's
# OpenAPI document (release 22 = Kubernetes 1.22). gRPC probes came in 1.24 (GA in
# 1.27); that one type is added here by hand, exactly as the 1.27 API defines it.
GRPC_ACTION = {"port": ("int", True), "service": ("str", False)}
API_MODELS = {("v1", "ConfigMap"): "V1ConfigMap", ("v1", "Service"): "V1Service",
              ("v1", "Secret"): "V1Secret", ("apps/v1", "StatefulSet"): "V1StatefulSet",
              ("apps/v1", "Deployment"): "V1Deployment",
              ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget"}


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


@pytest.mark.parametrize("doc", manifests() + manifests(K8S_ETCD),
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
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


@pytest.mark.parametrize("k8s", [K8S, K8S_ETCD], ids=lambda path: path.name)
def test_configuration_sets_only_real_flags(k8s):
    flags = normd_flags()
    config = by_kind("ConfigMap", k8s)[0]["data"]
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
                     "metrics": port_of(env["NORMD_HTTP_LISTEN"])}
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


@pytest.mark.parametrize("k8s", [K8S, K8S_ETCD], ids=lambda path: path.name)
def test_kustomization_lists_files_that_exist(k8s):
    kustomization = documents(k8s / "kustomization.yaml")[0]
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert set(kustomization) <= {"apiVersion", "kind", "labels", "resources", "namespace"}
    for name in kustomization["resources"]:
        assert (k8s / name).is_file(), name
    assert "secrets.example.yaml" not in kustomization["resources"]


def test_etcd_variant_deployment_etcd_and_budgets_agree():
    config = by_kind("ConfigMap", K8S_ETCD)[0]["data"]
    (deployment,) = by_kind("Deployment", K8S_ETCD)
    (etcd,) = by_kind("StatefulSet", K8S_ETCD)
    services = {doc["metadata"]["name"]: doc for doc in by_kind("Service", K8S_ETCD)}
    budgets = {doc["metadata"]["name"]: doc for doc in by_kind("PodDisruptionBudget", K8S_ETCD)}
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    # normd's store names every etcd member by its stable DNS name and client port.
    etcd_pod = etcd["spec"]["template"]
    etcd_service = services[etcd["spec"]["serviceName"]]
    client_port = next(p["containerPort"] for p in etcd_pod["spec"]["containers"][0]["ports"]
                       if p["name"] == "client")
    members = [f"http://{etcd['metadata']['name']}-{i}.{etcd_service['metadata']['name']}:"
               f"{client_port}" for i in range(etcd["spec"]["replicas"])]
    assert config["NORMD_STORE"] == "etcd:" + ",".join(members)
    # etcd's initial cluster lists the same members, by peer URL.
    command = etcd_pod["spec"]["containers"][0]["command"]
    initial = next(arg for arg in command if arg.startswith("--initial-cluster="))
    assert initial.count("=http://") == etcd["spec"]["replicas"]
    assert etcd_service["spec"]["clusterIP"] == "None"
    assert etcd_service["spec"]["publishNotReadyAddresses"] is True

    # The headless normd Service finds the Deployment's pods, on ports they have.
    normd_service = services["normd"]
    assert normd_service["spec"]["clusterIP"] == "None"
    assert normd_service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert {p["targetPort"] for p in normd_service["spec"]["ports"]} <= set(ports)
    assert ports["health"] == port_of(config["NORMD_HEALTH_LISTEN"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == ports["health"], probe

    # The budgets select the pods they protect and keep a quorum / most replicas.
    assert budgets["normd"]["spec"]["selector"]["matchLabels"].items() <= \
        pod["metadata"]["labels"].items()
    assert budgets["normd"]["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    assert budgets["etcd"]["spec"]["selector"]["matchLabels"].items() <= \
        etcd_pod["metadata"]["labels"].items()
    assert budgets["etcd"]["spec"]["maxUnavailable"] <= (etcd["spec"]["replicas"] - 1) // 2

    # Stateless: the data directory is scratch space; nothing asks for a claim.
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts[config["NORMD_DATA_DIR"]]]
    grace = int(config["NORMD_SHUTDOWN_GRACE_SECONDS"])
    assert pod["spec"]["terminationGracePeriodSeconds"] > grace


# ---- the other tools' own validators -------------------------------------------------
def test_yaml_files_pass_yamllint():
    files = sorted(str(path) for path in [*DEPLOY.rglob("*.y*ml"),
                                          *(REPO / "tests" / "deploy").glob("*.yml")])
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
    assert target == f"normd:{port_of(normd['environment']['NORMD_HTTP_LISTEN'])}"


def test_prometheus_config_passes_promtool():
    result = subprocess.run(["promtool", "check", "config", str(DEPLOY / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_drift_alert_rules_fire_as_their_unit_tests_say():
    """promtool evaluates deploy/normd-alerts.yml over made-up series: which alert fires
    when, with which labels and words."""
    tests = REPO / "tests" / "deploy" / "normd-alerts.test.yml"
    result = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


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
    assert exposed == {port_of(env["NORMD_LISTEN"]), port_of(env["NORMD_HTTP_LISTEN"])}
    assert "health" in re.search(r"HEALTHCHECK[^\n]*\\\n.*", runtime).group(0)


def sanitizer_build():
    ldd = subprocess.run(["ldd", NORMD_BIN], capture_output=True, text=True, check=True).stdout
    return re.search(r"lib(asan|tsan|ubsan)\.so", ldd) is not None
