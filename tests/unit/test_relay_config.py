"""The ``dubbo_ingress`` and ``relay`` config sections: values and located errors."""

from __future__ import annotations

import pytest
from tribridge.config.model import ConfigError, parse_config

LINK = """
relay:
  tls: {cert: /c/a.pem, key: /c/a.key, ca: /c/ca.pem}
  links: {b: {address: "10.0.0.2:7443", heartbeat: 2s}}
"""


def test_full_sections_parse(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg_file = tmp_path / "gw.yaml"
    cfg_file.write_text(
        """
registries: {static: {type: static, services: {com.x.A: ["relay:b?version=1.0.0"]}}}
relay:
  tls: {cert: certs/a.pem, key: certs/a.key, ca: /abs/ca.pem}
  listen: {host: 127.0.0.1, port: 7443}
  exports: ["com.x.*"]
  allow: [gw-a]
  max_in_flight: 64
  links: {b: {address: "10.0.0.2:7443", server_name: relay-b, backoff_max: 2s}}
dubbo_ingress:
  listen: {host: 127.0.0.1, port: 20881}
  routes:
    - {interface: "com.x.*", version: 1.0.0, group: g, method: "get*", to: "relay:b",
       timeout: 250ms}
    - {interface: "*"}
"""
    )
    from tribridge.config.model import load_config

    cfg = load_config(cfg_file)
    rc, ic = cfg.relay, cfg.dubbo_ingress
    assert rc.tls.cert == str(tmp_path / "certs/a.pem") and rc.tls.ca == "/abs/ca.pem"
    assert (rc.host, rc.port, rc.exports, rc.allow) == ("127.0.0.1", 7443, ["com.x.*"], ["gw-a"])
    assert rc.max_in_flight == 64
    link = rc.links["b"]
    assert (link.host, link.port, link.server_name, link.backoff_max) == (
        "10.0.0.2",
        7443,
        "relay-b",
        2.0,
    )
    assert ic.port == 20881 and len(ic.routes) == 2
    r0, r1 = ic.routes
    assert (r0.relay_link, r0.timeout, r1.to) == ("b", 0.25, "local")
    assert r0.matches("com.x.A", "1.0.0", "g", "getX")
    assert not r0.matches("com.x.A", "1.0.0", "g", "setX")
    assert not r0.matches("com.x.A", "", "g", "getX")
    assert not r0.matches("com.x.A", "1.0.0", "", "getX")
    assert r1.matches("anything", "", "", "m")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "dubbo_ingress: {routes: [{interface: a, to: 'relay:zz'}]}",
            "no relay link 'zz'",
        ),
        ("dubbo_ingress: {routes: [{interface: a, to: remote}]}", "expected local or relay:NAME"),
        ("dubbo_ingress: {routes: [{to: local}]}", "missing required key 'interface'"),
        (
            "registries: {static: {type: static, services: {com.x.A: ['relay:nope']}}}",
            "names no relay link",
        ),
        ("relay: {listen: {port: 1}}", "needs relay.tls"),
        ("relay: {links: {b: {address: 'x:1'}}}", "needs tls"),
        (LINK.replace("10.0.0.2:7443", "nohostport"), "expected host:port"),
        ("dubbo_ingress: {listen: {port: 99999}}", "expected 0..65535"),
        ("dubbo_ingress: {bogus: 1}", "unknown key"),
    ],
)
def test_errors_are_located(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        parse_config(text, "gw.yaml")
    assert str(e.value).startswith("gw.yaml:")


def test_ingress_tls_ca_is_optional_relay_tls_ca_is_not() -> None:
    cfg = parse_config("dubbo_ingress: {tls: {cert: /c/s.pem, key: /c/s.key}}", "gw.yaml")
    assert cfg.dubbo_ingress.tls.ca is None and cfg.dubbo_ingress.tls.cert == "/c/s.pem"
    with pytest.raises(ConfigError, match="missing required key 'ca'"):
        parse_config("relay: {tls: {cert: /c/s.pem, key: /c/s.key}}", "gw.yaml")
