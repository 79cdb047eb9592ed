"""Registry records are untrusted input (issue 21 item 5): Kubernetes, Eureka, Nacos, and
the MetadataInfo documents an instance's MetadataService answers.

Per source: the record parser is fuzzed with hypothesis (any input gives a record or a
typed skip reason, never another exception, in bounded time), and a gateway routes through
the source's emulator while hostile records sit beside the good ones: calls keep working, a
new good instance still arrives, and the skip shows in the registry status (admin view),
the metrics and ``registry ls``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from xml.sax.saxutils import escape

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tribridge.interop.demo_provider import SERVICE
from tribridge.interop.eureka_emulator import EurekaEmulator
from tribridge.interop.k8s_emulator import KubeEmulator, endpoint_slice, service, slice_endpoint
from tribridge.interop.nacos_registration import (
    DubboNacosProvider,
    client_config,
    demo_provider_url,
)
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.registries.base import ServiceKey
from tribridge.registries.checks import check_metadata
from tribridge.registries.eureka import EurekaRegistry, parse_applications
from tribridge.registries.kubernetes import KubernetesRegistry
from tribridge.registries.kubernetes_endpoints import clean_object
from tribridge.registries.metadata_service import (
    MetadataInfo,
    MetadataServiceError,
    instance_urls,
    metadata_service_candidates,
)
from tribridge.registries.nacos import NacosRegistry
from tribridge.registries.records import RecordRejected

from tests.conftest import tb
from tests.helpers.gateways import demo_via_registry

HDR = {"x-dubbo-version": "1.0.0"}
FUZZ = settings(
    max_examples=300,
    deadline=500,  # ms per example: "bounded time"
    suppress_health_check=[HealthCheck.too_slow],
)

# any JSON value, with the shapes registries expect mixed in
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["", "0", "99999", "-1", "1e9", "10.0.0.1", "[::1", "dubbo", "tri"])
)
json_values = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=12), kids, max_size=5)
    ),
    max_leaves=40,
)


def wait_for(pred: Callable[[], Any], timeout: float = 8.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def on_loop(bg: BackgroundLoop, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    async def go() -> Any:
        return fn(*args, **kw)

    return bg.run(go())


def gateway_config(registry_url: str) -> str:
    return yaml.safe_dump(
        demo_via_registry(registry_url, "src")
    )


def assert_calls_work(gw: Any, n: int = 20) -> None:
    for i in range(n):
        assert http_request(gw.port, "POST", f"/{SERVICE}/add", [i, 1], HDR) == (200, i + 1)


def assert_skips_visible(gw: Any, fragment: str) -> None:
    """The admin API's registry view (``GET /registries``) and ``/metrics`` show the skips."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.admin.port, timeout=10)
    try:
        conn.request("GET", "/registries")
        resp = conn.getresponse()
        assert resp.status == 200
        st_ = json.loads(resp.read())["registries"]["src"]
    finally:
        conn.close()
    assert any(fragment in k for k in st_["skipped"]), st_["skipped"]
    assert st_["skipped_records"]["total"] >= 1
    text = gw.metrics_text().decode()
    lines = [
        ln for ln in text.splitlines() if ln.startswith("tribridge_registry_records_skipped_total")
    ]
    assert lines and sum(float(ln.rsplit(" ", 1)[1]) for ln in lines) >= 1, lines


# ---- MetadataInfo documents ----------------------------------------------------------------------


@FUZZ
@given(doc=json_values)
def test_fuzz_metadata_info_document(doc: Any) -> None:
    for wrap in (doc, {"app": "a", "revision": "r", "services": doc}, {"services": {"k": doc}}):
        try:
            info = MetadataInfo.from_value(wrap)
        except MetadataServiceError:
            continue
        for si in info.services.values():
            assert isinstance(si.port, int) and 0 <= si.port < 65536
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in si.params.items())
            instance_urls(si.name, "a", "10.0.0.1", 20880, {}, info)


@FUZZ
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_fuzz_metadata_info_json(raw: bytes) -> None:
    try:
        MetadataInfo.from_json(raw)
    except MetadataServiceError:
        pass


@FUZZ
@given(params=json_values, endpoints=json_values)
def test_fuzz_instance_metadata_service_address(params: Any, endpoints: Any) -> None:
    meta = {
        "dubbo.metadata-service.url-params": json.dumps(params),
        "dubbo.endpoints": json.dumps(endpoints),
    }
    from tribridge.registries.base import RegistryError

    try:
        got = metadata_service_candidates("10.0.0.1", 20880, meta)
    except RegistryError:
        return
    assert 1 <= len(got) <= 3
    assert all(isinstance(p, int) and 0 <= p < 65536 for _, p in got)


def test_hostile_metadata_documents_are_typed_reasons() -> None:
    cases = [
        ([], "expected a MetadataInfo"),
        ({"services": [1]}, "services must be a map"),
        ({"services": {"k": {"name": "x", "port": 99999}}}, "out of range"),
        ({"services": {"k": {"name": "x", "port": float("inf")}}}, "bad port"),
        ({"services": {"k": {"name": "x", "port": True}}}, "bad port"),
        ({"services": {"k": {"name": ["x"]}}}, "expected text"),
        ({"services": {"k": {"name": "x", "params": {"a": "b" * 70_000}}}}, "characters"),
        (
            {"services": {"k": {"name": "x", "params": {str(i): "v" for i in range(2000)}}}},
            "params",
        ),
        ({"services": {str(i): {"name": "x"} for i in range(5000)}}, r"services \(limit"),
        ({"services": {"k": {"name": "x", "protocol": "dubbo://evil"}}}, "bad protocol"),
    ]
    for doc, reason in cases:
        with pytest.raises(MetadataServiceError, match=reason):
            MetadataInfo.from_value(doc)
    with pytest.raises(MetadataServiceError, match="not JSON"):
        MetadataInfo.from_json(b"\xff\xfe{")
    with pytest.raises(MetadataServiceError, match=r"nested too deeply|not JSON"):
        MetadataInfo.from_json(b"[" * 100_000)


# ---- Kubernetes -----------------------------------------------------------------------------------

K8S_KINDS = ("services", "endpointslices", "endpoints")


@FUZZ
@given(kind=st.sampled_from(K8S_KINDS), obj=json_values, name=st.text(max_size=8))
def test_fuzz_kubernetes_objects(kind: str, obj: Any, name: str) -> None:
    for o in (
        obj,
        {"metadata": {"name": name or "n"}, "endpoints": obj, "ports": obj},
        {"metadata": {"name": "n", "annotations": obj, "labels": obj}, "subsets": obj},
    ):
        try:
            got_name, cleaned, rejects = clean_object(kind, o)
        except RecordRejected as e:
            assert isinstance(e.reason, str) and e.reason
            continue
        assert isinstance(got_name, str) and isinstance(cleaned, dict)
        assert all(isinstance(k, str) and isinstance(r, RecordRejected) for k, r in rejects)


@FUZZ
@given(events=st.lists(json_values, max_size=6))
def test_fuzz_kubernetes_watch_events_never_raise(events: list[Any]) -> None:
    """Events into a registry that holds a good Service: reading the cache never raises."""
    reg = KubernetesRegistry(None, "k", namespace="default")
    good = service("demo", {"tribridge.io/interfaces": SERVICE})
    reg._admit("services", good, "x")
    for ev in events:
        for e in (
            ev,
            {"type": "ADDED", "object": ev},
            {"type": "MODIFIED", "object": {"metadata": {"name": "s"}, "endpoints": ev}},
        ):
            for kind in K8S_KINDS:
                reg._apply_event(kind, e)
    from tribridge.registries.base import ServiceKey

    reg.endpoints_for(ServiceKey(SERVICE))
    reg.endpoint_kind = "endpoints"
    reg.endpoints_for(ServiceKey(SERVICE))
    reg.status()


def hostile_k8s_objects(port: int) -> list[dict[str, Any]]:
    """Services and slices that must be skipped, each beside the good ones."""
    ann = {"tribridge.io/interfaces": SERVICE, "tribridge.io/version": "1.0.0"}
    good_port = [{"name": "dubbo", "port": port}]
    bad_slice = endpoint_slice("evil-ports", "demo", [slice_endpoint("127.0.0.1")], good_port)
    bad_slice["ports"] = [{"name": "dubbo", "port": 99999}, {"name": "dubbo", "port": "x"}]
    bad_eps = endpoint_slice(
        "evil-eps",
        "demo",
        [slice_endpoint("127.0.0.1")],
        good_port,
    )
    bad_eps["endpoints"] = [
        {"addresses": ["[::1"]},
        {"addresses": "10.0.0.1"},
        {"addresses": ["127.0.0.1"], "conditions": {"ready": "yes"}},
        "not an endpoint",
        {"addresses": ["a b c"]},
    ]
    bad_labels = endpoint_slice("evil-labels", "demo", [slice_endpoint("127.0.0.1")], good_port)
    bad_labels["metadata"]["labels"] = {"kubernetes.io/service-name": ["demo"]}
    weight = service("evil-weight", dict(ann, **{"tribridge.io/weight": "1e99"}))
    huge = service("evil-huge", dict(ann, **{"tribridge.io/group": "g" * 100_000}))
    ctrl = service("evil-ctrl", dict(ann, **{"tribridge.io/version": "1.0.0\r\nx: y"}))
    proto = service("evil-proto", dict(ann, **{"tribridge.io/protocol": "http"}))
    ann_type = service("evil-ann", ann)
    ann_type["metadata"]["annotations"] = ["not", "a", "map"]
    return [bad_slice, bad_eps, bad_labels, weight, huge, ctrl, proto, ann_type]


def test_kubernetes_hostile_objects_beside_good_ones(bg: BackgroundLoop) -> None:
    emu = bg.run(KubeEmulator().start())
    p1 = bg.start_provider(version="1.0.0")
    p2 = bg.start_provider(version="1.0.0")
    ann = {"tribridge.io/interfaces": SERVICE, "tribridge.io/version": "1.0.0"}
    try:
        on_loop(bg, emu.apply, service("demo", ann))
        for obj in hostile_k8s_objects(p1.port):
            on_loop(bg, emu.apply, obj)
        on_loop(
            bg,
            emu.apply,
            endpoint_slice(
                "demo-0",
                "demo",
                [slice_endpoint("127.0.0.1")],
                [{"name": "dubbo", "port": p1.port}],
            ),
        )
        gw = bg.start_gateway(
            admin_port=0,
            config_yaml=gateway_config(f"k8s://127.0.0.1:{emu.port}?namespace=default"),
        )
        svc = gw.services[SERVICE]
        wait_for(lambda: {e.port for e in svc.snapshot.endpoints} == {p1.port}, what="p1")
        assert_calls_work(gw)
        # more hostile objects arrive while serving: nothing changes for the good ones
        bad = endpoint_slice("evil-late", "demo", [slice_endpoint("127.0.0.1")], [])
        bad["endpoints"] = [{"addresses": ["127.0.0.1"], "targetRef": "pod"}]
        on_loop(bg, emu.apply, bad)
        # a new good instance still arrives and is called
        on_loop(
            bg,
            emu.apply,
            endpoint_slice(
                "demo-1",
                "demo",
                [slice_endpoint("127.0.0.1")],
                [{"name": "dubbo", "port": p2.port}],
            ),
        )
        wait_for(lambda: {e.port for e in svc.snapshot.endpoints} == {p1.port, p2.port}, what="p2")
        before = p2.calls
        assert_calls_work(gw, 30)
        assert p2.calls > before
        assert svc.snapshot.healthy
        skipped = gw.registry_status()["src"]["skipped"]
        for frag in (
            "endpointslices/evil-ports.ports[0]",
            "endpointslices/evil-eps.endpoints[0]",
            "endpointslices/evil-labels",
            "services/evil-weight",
            "services/evil-huge",
            "services/evil-ctrl",
            "services/evil-proto",
            "services/evil-ann",
            "endpointslices/evil-late.endpoints[0]",
        ):
            assert any(frag in k for k in skipped), (frag, skipped)
        assert_skips_visible(gw, "evil-")
        r = tb("registry", "ls", f"k8s://127.0.0.1:{emu.port}?namespace=default", SERVICE)
        assert r.returncode == 0 and f"127.0.0.1:{p1.port}" in r.stdout, r.stderr
        assert "skipped: services/evil-weight" in r.stdout, r.stdout
    finally:
        bg.run(emu.stop())
        bg.run(p1.close(1.0))
        bg.run(p2.close(1.0))


def test_kubernetes_garbled_watch_line_does_not_stop_the_watch() -> None:
    reg = KubernetesRegistry(None, "k", namespace="default")
    assert reg._apply_event("services", ["not", "an", "event"]) is False
    assert reg._apply_event("services", {"type": "ADDED", "object": 7}) is False
    assert "services watch" in reg.status()["skipped"]


# ---- Eureka ------------------------------------------------------------------------------------


def eureka_instance_xml(
    iid: str = "x-1",
    ip: str = "127.0.0.1",
    port: str = "20880",
    status: str = "UP",
    meta: dict[str, str] | None = None,
    extra: str = "",
) -> str:
    m = {"dubbo.interfaces": SERVICE, "dubbo.version": "1.0.0", **(meta or {})}
    md = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in m.items())
    return (
        f"<instance><instanceId>{escape(iid)}</instanceId><app>X</app>"
        f"<ipAddr>{escape(ip)}</ipAddr><status>{escape(status)}</status>"
        f'<port enabled="true">{escape(port)}</port><metadata>{md}</metadata>{extra}'
        "<actionType>ADDED</actionType></instance>"
    )


_xml_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=30)


@FUZZ
@given(
    iid=_xml_text,
    ip=_xml_text | st.sampled_from(["10.0.0.1", "::1", "[::1", "a b"]),
    port=_xml_text | st.integers().map(str),
    status=_xml_text | st.just("UP"),
    meta=st.dictionaries(
        st.sampled_from(
            [
                "dubbo.port",
                "dubbo.protocol",
                "dubbo.weight",
                "dubbo.version",
                "dubbo.group",
                "dubbo.interfaces",
                "dubbo.methods",
            ]
        ),
        _xml_text | st.integers().map(str),
        max_size=6,
    ),
)
def test_fuzz_eureka_instances(iid: str, ip: str, port: str, status: str, meta: dict) -> None:
    """Any instance fields: parsed into a record or a reason; endpoints never raise."""
    body = (
        "<applications><apps__hashcode>UP_1_</apps__hashcode><application><name>X</name>"
        + eureka_instance_xml(iid, ip, port, status, meta)
        + eureka_instance_xml("good", "10.0.0.9", "20880", "UP")
        + "</application></applications>"
    )
    apps, _rejects = parse_applications(body)
    assert "good" in apps.apps["X"]
    reg = EurekaRegistry(["http://127.0.0.1:1/eureka/"], "eu")
    reg.apps = apps.apps
    from tribridge.registries.base import ServiceKey

    eps = reg.endpoints_for(ServiceKey(SERVICE))
    assert ("10.0.0.9", 20880) in {(e.host, e.port) for e in eps}
    for e in eps:
        assert 0 < e.port < 65536 and 0 <= e.weight <= 10000 and e.protocol in ("dubbo", "tri")


@FUZZ
@given(body=st.binary(max_size=300) | _xml_text.map(lambda t: f"<applications>{t}</applications>"))
def test_fuzz_eureka_answers(body: Any) -> None:
    from tribridge.registries.base import RegistryError

    try:
        parse_applications(body)
    except RegistryError:
        pass


def test_eureka_answer_with_a_dtd_is_refused() -> None:
    from tribridge.registries.base import RegistryError

    bomb = (
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><applications>&b;</applications>'
    )
    with pytest.raises(RegistryError, match="DTD"):
        parse_applications(bomb)


EUREKA_HOSTILE = [
    ("EVIL", "UP", eureka_instance_xml("evil-port", port="99999")),
    ("EVIL", "UP", eureka_instance_xml("evil-port-text", port="20880x")),
    ("EVIL", "UP", eureka_instance_xml("evil-ip", ip="[::1")),
    ("EVIL", "UP", eureka_instance_xml("evil-weight", meta={"dubbo.weight": "1000000000"})),
    ("EVIL", "UP", eureka_instance_xml("evil-proto", meta={"dubbo.protocol": "http"})),
    ("EVIL", "UP", eureka_instance_xml("evil-dport", meta={"dubbo.port": "-5"})),
    ("EVIL", "UP", eureka_instance_xml("evil-huge", meta={"dubbo.group": "g" * 100_000})),
    (
        "EVIL",
        "UP",
        eureka_instance_xml(
            "evil-country",
            meta={"dubbo.interfaces": "com.x.Other"},
            extra="<countryId>x</countryId>",
        ),
    ),
    ("EVIL", "UP", eureka_instance_xml("", port="20880")),
    ("EVIL", "UP", eureka_instance_xml("evil-noport").replace('enabled="true"', 'enabled="false"')),
]


def test_eureka_hostile_instances_beside_good_ones(bg: BackgroundLoop) -> None:
    emu = bg.run(EurekaEmulator(eviction_interval=0.2).start())
    p1 = bg.start_provider(version="1.0.0")
    p2 = bg.start_provider(version="1.0.0")
    meta = {"dubbo.interfaces": SERVICE, "dubbo.version": "1.0.0"}
    try:
        emu.raw_instances.extend(EUREKA_HOSTILE)
        on_loop(
            bg,
            emu.register,
            "demo",
            "demo-1",
            p1.port,
            metadata={**meta, "dubbo.port": str(p1.port)},
        )
        url = f"eureka://127.0.0.1:{emu.port}/eureka?interval=0.1"
        gw = bg.start_gateway(admin_port=0, config_yaml=gateway_config(url))
        svc = gw.services[SERVICE]
        wait_for(lambda: {e.port for e in svc.snapshot.endpoints} == {p1.port}, what="p1")
        assert_calls_work(gw)
        # a new good instance arrives through a delta while the hostile ones stay
        on_loop(
            bg,
            emu.register,
            "demo",
            "demo-2",
            p2.port,
            metadata={**meta, "dubbo.port": str(p2.port)},
        )
        wait_for(lambda: {e.port for e in svc.snapshot.endpoints} == {p1.port, p2.port}, what="p2")
        before = p2.calls
        assert_calls_work(gw, 30)
        assert p2.calls > before and svc.snapshot.healthy
        st_ = gw.registry_status()["src"]
        for iid in (
            "evil-port",
            "evil-port-text",
            "evil-ip",
            "evil-weight",
            "evil-proto",
            "evil-dport",
            "evil-huge",
            "evil-noport",
        ):
            assert f"EVIL/{iid}" in st_["skipped"], (iid, st_["skipped"])
        assert any("instance[" in k for k in st_["skipped"])  # the one without an id
        assert st_["fetches"]["delta"] >= 1
        assert_skips_visible(gw, "EVIL/")
        r = tb("registry", "ls", url, SERVICE)
        assert r.returncode == 0 and f"127.0.0.1:{p1.port}" in r.stdout, r.stderr
        assert "skipped: EVIL/evil-port:" in r.stdout, r.stdout
    finally:
        bg.run(emu.stop())
        bg.run(p1.close(1.0))
        bg.run(p2.close(1.0))


# ---- Nacos ---------------------------------------------------------------------------------------


class _Inst:
    """What the Nacos SDK hands the registry: an object with instance attributes."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


@pytest.fixture(scope="module")
def nacos_reg() -> Iterator[NacosRegistry]:
    """One registry for every example (each one makes a work directory)."""
    reg = NacosRegistry("127.0.0.1:1", "n")
    try:
        yield reg
    finally:
        shutil.rmtree(reg._work_dir, ignore_errors=True)


@FUZZ
@given(
    ip=json_values,
    port=json_values,
    weight=json_values,
    metadata=json_values
    | st.dictionaries(
        st.sampled_from(
            ["protocol", "weight", "version", "group", "interface", "path", "category"]
        ),
        json_values,
        max_size=5,
    ),
)
def test_fuzz_nacos_instances(
    nacos_reg: NacosRegistry, ip: Any, port: Any, weight: Any, metadata: Any
) -> None:
    reg = nacos_reg
    inst = _Inst(ip=ip, port=port, weight=weight, metadata=metadata, healthy=True, enabled=True)
    reg._usable(inst)
    ep = reg._interface_endpoint("providers:x", inst, "x")
    if ep is not None:
        assert 0 < ep.port < 65536 and 0 <= ep.weight <= 10000
    good = _Inst(ip="10.0.0.1", port=20880, weight=1.0, metadata={}, healthy=True, enabled=True)
    assert reg._interface_endpoint("providers:x", good, "x") is not None


@FUZZ
@given(doc=json_values)
def test_fuzz_service_definition(doc: Any) -> None:
    from tribridge.registries.base import RegistryError
    from tribridge.registries.metadata import ServiceDefinition

    for d in (doc, {"canonicalName": "x", "methods": doc, "types": doc}, json.dumps(doc)):
        try:
            ServiceDefinition.from_json(d)
        except RegistryError:
            pass


def test_nacos_hostile_instances_and_metadata_beside_good_ones(
    bg: BackgroundLoop, nacos: Any
) -> None:
    from v2.nacos import (
        BatchRegisterInstanceParam,
        ConfigParam,
        NacosConfigService,
        NacosNamingService,
        RegisterInstanceParam,
    )

    ns = f"ns-{uuid.uuid4().hex[:8]}"
    p1 = bg.start_provider(version="1.0.0")
    p2 = bg.start_provider(version="1.0.0")
    regs: list[DubboNacosProvider] = []

    def register(port: int) -> None:
        r = DubboNacosProvider(
            nacos.address, demo_provider_url(port, version="1.0.0"), namespace=ns
        )
        bg.run(r.start())
        regs.append(r)

    svc_name = f"providers:{SERVICE}:1.0.0:"
    hostile = [
        ("[::1", 20880, 1.0, {}),
        ("evil host", 20880, 1.0, {}),
        ("127.0.0.1", 0, 1.0, {}),
        ("127.0.0.1", 20001, 1e300, {}),
        ("127.0.0.1", 20002, 1.0, {"protocol": "dubbo://evil"}),
        ("127.0.0.1", 20003, 1.0, {"weight": "1e99"}),
        ("127.0.0.1", 20004, 1.0, {"interface": "com.x.Other"}),
        ("127.0.0.1", 20005, 1.0, {"group": "g" * 100_000}),
        ("127.0.0.1", 20006, 1.0, {"version": "1.0.0\r\nx"}),
    ]

    async def plant() -> tuple[Any, Any]:
        cfg = client_config(nacos.address, namespace=ns)
        naming = await NacosNamingService.create_naming_service(cfg)
        config = await NacosConfigService.create_config_service(cfg)
        # one client holds one instance per service unless it registers a batch
        await naming.batch_register_instances(
            BatchRegisterInstanceParam(
                service_name=svc_name,
                instances=[
                    RegisterInstanceParam(
                        service_name=svc_name,
                        ip=ip,
                        port=port,
                        weight=weight,
                        # what would match the gateway's service if it were not refused
                        metadata={"version": "1.0.0", "interface": SERVICE, **meta},
                    )
                    for ip, port, weight, meta in hostile
                ],
            )
        )
        # application level: the mapping names two hostile apps
        await config.publish_config(
            ConfigParam(data_id=SERVICE, group="mapping", content="evil-params,evil-doc")
        )
        await naming.register_instance(
            RegisterInstanceParam(
                service_name="evil-params",
                ip="127.0.0.1",
                port=20010,
                metadata={
                    "dubbo.metadata.revision": "r1",
                    "dubbo.metadata-service.url-params": '{"port": "99999", "protocol": "tri"}',
                },
            )
        )
        await naming.register_instance(
            RegisterInstanceParam(
                service_name="evil-doc",
                ip="127.0.0.1",
                port=20011,
                metadata={"dubbo.metadata.revision": "r2", "dubbo.metadata.storage-type": "remote"},
            )
        )
        doc = {"app": "evil-doc", "services": {"k": {"name": SERVICE, "port": 99999}}}
        await config.publish_config(
            ConfigParam(data_id="evil-doc", group="r2", content=json.dumps(doc))
        )
        return naming, config

    naming, config = bg.run(plant())
    try:
        register(p1.port)
        url = f"nacos://{nacos.address}?namespace={ns}&timeout=1000&refresh=1"
        gw = bg.start_gateway(admin_port=0, config_yaml=gateway_config(url))
        svc = gw.services[SERVICE]
        wait_for(lambda: {e.port for e in svc.snapshot.endpoints} == {p1.port}, what="p1")
        assert_calls_work(gw)
        register(p2.port)
        wait_for(lambda: {e.port for e in svc.snapshot.endpoints} == {p1.port, p2.port}, what="p2")
        before = p2.calls
        assert_calls_work(gw, 30)
        assert p2.calls > before and svc.snapshot.healthy
        skipped = wait_for(
            lambda: (
                (s := gw.registry_status()["src"]["skipped"])
                and any(k.startswith("evil-doc") for k in s)
                and s
            ),
            what="app-level skips",
        )
        for frag, why in (
            (f"{svc_name} [::1:20880", "bad ip"),
            (f"{svc_name} evil host:20880", "bad ip"),
            (f"{svc_name} 127.0.0.1:0", "bad port"),
            (f"{svc_name} 127.0.0.1:20001", "outside 0..10000"),
            (f"{svc_name} 127.0.0.1:20002", "bad protocol"),
            (f"{svc_name} 127.0.0.1:20003", "weight"),
            (f"{svc_name} 127.0.0.1:20004", "under the service of"),
            (f"{svc_name} 127.0.0.1:20005", "characters"),
            (f"{svc_name} 127.0.0.1:20006", "control characters"),
            ("evil-params 127.0.0.1:20010", "url-params"),
            ("evil-doc 127.0.0.1:20011", "out of range"),
        ):
            assert why in skipped.get(frag, ""), (frag, sorted(skipped))
        assert_skips_visible(gw, "evil-doc")
        r = tb("registry", "ls", url, SERVICE)
        assert r.returncode == 0 and f"127.0.0.1:{p1.port}" in r.stdout, r.stderr
        assert "skipped: providers:" in r.stdout, r.stdout
    finally:
        for r in regs:
            bg.run(r.close())

        async def done() -> None:
            await naming.shutdown()
            config.grpc_client_proxy.stop_event.set()
            config.grpc_client_proxy.execute_config_listen_channel.put_nowait(None)

        bg.run(done())
        bg.run(p1.close(1.0))
        bg.run(p2.close(1.0))


def test_a_record_that_stays_bad_is_counted_once() -> None:
    """Re-reading the same bad records (every full fetch, every MODIFIED event) neither
    recounts nor re-logs them; a fixed or removed record leaves the report."""

    async def eureka() -> tuple[int, int, dict[str, str]]:
        emu = await EurekaEmulator().start()
        try:
            emu.raw_instances.extend(EUREKA_HOSTILE)
            reg = EurekaRegistry.from_url(f"eureka://127.0.0.1:{emu.port}/eureka", "eu")
            reg.subscribe(ServiceKey(SERVICE, "1.0.0"), lambda s: None)
            await reg.fetch_once()
            first = reg.skips.total
            for _ in range(3):
                reg._need_full = True
                await reg.fetch_once()
            again = reg.skips.total
            emu.raw_instances.clear()
            reg._need_full = True
            await reg.fetch_once()
            return first, again, reg.status()["skipped"]
        finally:
            await emu.stop()

    first, again, left = asyncio.run(eureka())
    assert first == again == len(EUREKA_HOSTILE) - 1  # evil-country routes another interface
    assert left == {}

    reg = KubernetesRegistry(None, "k", namespace="default")
    bad = hostile_k8s_objects(20880)[1]  # evil-eps: 5 bad endpoints
    for _ in range(3):
        reg._apply_event("endpointslices", {"type": "MODIFIED", "object": bad})
    assert reg.skips.total == 5
    fixed = endpoint_slice("evil-eps", "demo", [slice_endpoint("127.0.0.1")], [])
    reg._apply_event("endpointslices", {"type": "MODIFIED", "object": fixed})
    assert reg.status()["skipped"] == {}


def test_harmless_line_breaks_in_free_form_metadata_are_kept() -> None:
    """Strictness where routing reads a field, not for every metadata value: a registrant's
    multi-line note does not cost it its instance, a line break in its version does."""
    body = (
        "<applications><application><name>X</name>"
        + eureka_instance_xml("ok", meta={"note": "line one\nline two\ttab"})
        + eureka_instance_xml("bad", meta={"dubbo.version": "1.0.0\nx"})
        + "</application></applications>"
    )
    apps, _ = parse_applications(body)
    reg = EurekaRegistry(["http://127.0.0.1:1/eureka/"], "eu")
    reg.apps = apps.apps
    eps = reg.endpoints_for(ServiceKey(SERVICE, "*"))
    assert [e.metadata["eureka.instanceId"] for e in eps] == ["ok"]
    skipped = reg.status()["skipped"]
    assert "control characters" in skipped["X/bad"]
    with pytest.raises(RecordRejected, match="control characters"):
        check_metadata({"note": "a\x00b"})
