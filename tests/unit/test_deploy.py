"""Deployment files: the k8s manifests parse and agree with each other, with the gateway's
config schema and with the CLI; the Dockerfile runs the README's command as a non-root user.
(No Docker daemon or cluster here: these are the checks that can run.)"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any

import yaml
from tribridge.cli.main import build_parser
from tribridge.config.model import parse_config
from tribridge.interop.testing import http_request
from tribridge.registries import SCHEMES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def manifests() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            assert doc["apiVersion"] and doc["metadata"]["name"] == "tribridge", f
            out[doc["kind"]] = doc
    return out


def gateway_yaml() -> str:
    return manifests()["ConfigMap"]["data"]["gateway.yaml"]


def with_static_registry(text: str) -> dict[str, Any]:
    """The ConfigMap's config with its registry replaced by an empty static one (the
    registry clients are tested elsewhere); everything else as shipped."""
    doc = yaml.safe_load(text)
    for name, url in doc["registries"].items():
        assert url.split("://")[0] in SCHEMES
        doc["registries"][name] = {"type": "static", "services": {}}
    return doc


def test_manifest_kinds() -> None:
    assert set(manifests()) == {
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }


def test_disruption_budget_keeps_a_gateway_serving() -> None:
    m = manifests()
    pdb = m["PodDisruptionBudget"]["spec"]
    assert pdb["selector"] == m["Deployment"]["spec"]["selector"]
    least = min(
        m["Deployment"]["spec"]["replicas"], m["HorizontalPodAutoscaler"]["spec"]["minReplicas"]
    )
    # evictions leave at least one pod: maxUnavailable below the replicas, or minAvailable >= 1
    if "maxUnavailable" in pdb:
        assert 1 <= pdb["maxUnavailable"] < least
    else:
        assert 1 <= pdb["minAvailable"] < least


def test_read_only_root_has_a_writable_tmp() -> None:
    """IDL services compile .proto files in a temporary directory and the Nacos client keeps
    its cache there: with a read-only root filesystem, /tmp must be a volume."""
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {v["mountPath"]: v for v in c["volumeMounts"]}
    tmp = mounts["/tmp"]
    assert not tmp.get("readOnly", False)
    (vol,) = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
    assert vol["emptyDir"]["sizeLimit"]  # bounded: a full /tmp cannot take the node's memory


def test_container_listens_on_all_interfaces() -> None:
    """Both the image's default command and the Deployment's config listen on 0.0.0.0: a
    container's 127.0.0.1 is unreachable from outside it."""
    argv = dockerfile_json("CMD")
    args = build_parser().parse_args(argv)
    assert args.host == "0.0.0.0"
    cfg = parse_config(yaml.safe_dump(with_static_registry(gateway_yaml())), "configmap")
    assert cfg.host == "0.0.0.0"


def test_image_installs_the_extras_its_config_needs() -> None:
    from tribridge.registries import EXTRAS

    text = (ROOT / "Dockerfile").read_text()
    # declared in both stages (the builder builds the extras' wheels, the runtime installs them)
    defaults = set(re.findall(r"^ARG TRIBRIDGE_EXTRAS=(\S+)$", text, re.M))
    assert len(defaults) == 1
    (default,) = defaults
    assert 'pip wheel --wheel-dir /wheels ".[${TRIBRIDGE_EXTRAS}]"' in text
    assert '--find-links /wheels "tribridge[${TRIBRIDGE_EXTRAS}]"' in text
    extras = set(default.split(","))
    for url in yaml.safe_load(gateway_yaml())["registries"].values():
        module = SCHEMES[url.split("://")[0]].split(":")[0]
        assert "all" in extras or EXTRAS[module] in extras, (url, extras)
    # the files pyproject.toml names are in the build context the image copies
    copied = " ".join(re.findall(r"^COPY (.*) \S+$", text, re.M)).split()
    assert {"pyproject.toml", "README.md", "LICENSE"} <= set(copied)


def test_configmap_config_is_valid() -> None:
    cfg = parse_config(yaml.safe_dump(with_static_registry(gateway_yaml())), "configmap")
    assert cfg.host == "0.0.0.0" and cfg.admin_host == "127.0.0.1"
    assert cfg.metrics_on_main and cfg.watch_interval > 0


def test_deployment_matches_config_cli_and_probes() -> None:
    m = manifests()
    cfg = parse_config(yaml.safe_dump(with_static_registry(gateway_yaml())), "configmap")
    pod = m["Deployment"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["http"] == cfg.port
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    args = build_parser().parse_args(c["args"])
    assert args.command == "run" and args.workers >= 1
    (mount,) = [v for v in c["volumeMounts"] if v["name"] == "config"]
    assert "subPath" not in mount  # a subPath mount never sees ConfigMap updates
    assert posixpath.dirname(args.config) == mount["mountPath"]
    assert posixpath.basename(args.config) in m["ConfigMap"]["data"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    annotations = m["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(cfg.port)
    sel = m["Deployment"]["spec"]["selector"]["matchLabels"]
    assert m["Service"]["spec"]["selector"] == sel
    assert m["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == "tribridge"


def dockerfile_json(directive: str) -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    (line,) = re.findall(rf"^{directive}\s+(\[.*\])\s*$", text, re.M)
    return json.loads(line)


def test_dockerfile_runs_the_readme_command_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)
    (user,) = re.findall(r"^USER\s+(\S+)$", text, re.M)
    assert user.split(":")[0] not in ("0", "root")
    argv = dockerfile_json("ENTRYPOINT") + dockerfile_json("CMD")
    assert argv[0] == "tribridge"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run"
    readme = (ROOT / "README.md").read_text()
    assert "tribridge run -c gateway.yaml" in readme and "--workers N" in readme
    # the Deployment mounts the config where the image's default command reads it
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"][:3] == argv[1:4]


def test_configmap_config_serves_probes(tribridge_gateway_factory) -> None:  # type: ignore[no-untyped-def]
    doc = with_static_registry(gateway_yaml())
    doc["listen"] = {"host": "127.0.0.1", "port": 0}
    doc["admin"] = {"port": 0}
    gw = tribridge_gateway_factory(doc)
    assert http_request(gw.port, "GET", "/healthz") == (200, {"status": "ok"})
    status, body = http_request(gw.port, "GET", "/readyz")
    assert status == 503 and body["without_providers"]  # no provider: not ready
    status, raw = http_request(gw.port, "GET", "/metrics")
    assert status == 200 and b"tribridge_config_info" in raw


def test_dockerfile_builds_compiled_codecs_and_ships_no_compiler() -> None:
    """A builder stage compiles the codecs (a failed compile fails the build), the runtime
    stage installs the wheels offline, checks they are compiled, and has no compiler."""
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM\s+", text, flags=re.M)[1:]
    assert len(stages) == 2
    build, runtime = stages
    assert build.startswith("python:3.11-slim AS build")
    assert runtime.startswith("python:3.11-slim\n")  # the same Python ABI as the wheels
    assert "gcc" in build and "TRIBRIDGE_REQUIRE_COMPILED=1 pip wheel --wheel-dir /wheels" in build
    assert "COPY pyproject.toml setup.py" in build  # setup.py is the compiling build hook
    assert "gcc" not in runtime and "apt-get" not in runtime and "COPY" not in runtime
    assert '--no-index --find-links /wheels "tribridge[' in runtime
    assert "('compiled', 'compiled')" in runtime
    ignored = (ROOT / ".dockerignore").read_text().split()
    # compiled files of the build machine must never reach the image (other ABI, stale)
    assert "**/*.so" in ignored and "build" in ignored
    assert "interop/java/*/target" in ignored  # test peers' jars: not in the build context
