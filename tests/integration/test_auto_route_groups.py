"""Auto routes reach providers exported only under a group and/or version named in the
``x-dubbo-group`` / ``x-dubbo-version`` headers (as the Dubbo2 ingress does): here
three demo providers exporting one interface as g1/1.0.0, g2/1.0.0 and g1/2.0.0 (the Java
peers in tests/interop/test_java_matrix.py do the same on one port)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from tribridge.interop.testing import BackgroundLoop, http_request

S = "com.tribridge.demo.DemoService"


@pytest.fixture(scope="module")
def gw() -> Iterator[tuple[BackgroundLoop, int]]:
    with BackgroundLoop() as bg:
        p1 = bg.start_provider(version="1.0.0", group="g1")
        p2 = bg.start_provider(version="1.0.0", group="g2")
        p3 = bg.start_provider(version="2.0.0", group="g1")
        entries = [
            f"127.0.0.1:{p1.port}?version=1.0.0&group=g1",
            f"127.0.0.1:{p2.port}?version=1.0.0&group=g2",
            f"127.0.0.1:{p3.port}?version=2.0.0&group=g1",
        ]
        cfg = {
            "registries": {"static": {"type": "static", "services": {S: entries}}},
            "auto_routes": {"prefix": "/", "expose": ["com.tribridge.*"]},
        }
        g = bg.start_gateway(yaml.safe_dump(cfg))
        yield bg, g.port, (p1, p2, p3)  # type: ignore[misc]


def test_group_and_version_headers_pick_the_export(gw) -> None:  # type: ignore[no-untyped-def]
    _, port, providers = gw
    for (group, version), p in zip(
        (("g1", "1.0.0"), ("g2", "1.0.0"), ("g1", "2.0.0")), providers, strict=True
    ):
        hdr = {"x-dubbo-group": group, "x-dubbo-version": version}
        status, body = http_request(port, "POST", f"/{S}/greet", ["Ada"], hdr)
        assert (status, body) == (200, "Hello, Ada"), (group, version, body)
        seen = p.last_attachments["$invoke"]  # no signature known: a generic call
        assert (seen.get("group"), seen.get("version")) == (group, version)


def test_no_group_header_means_no_group(gw) -> None:  # type: ignore[no-untyped-def]
    _, port, _ = gw
    status, body = http_request(port, "POST", f"/{S}/greet", ["Ada"])
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = http_request(port, "POST", f"/{S}/greet", ["Ada"], {"x-dubbo-group": "g9"})
    assert status == 404, body
