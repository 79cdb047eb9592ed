"""gRPC server reflection v1 against a real implementation: @grpc/reflection (grpc-js),
whose v1 service is its own code (grpcio-reflection ships only v1alpha; our grpcio peer
serves v1 by re-registering that servicer under the v1 name).  A server offering only v1
proves ``reflection: v1`` and ``reflection: true`` (v1 first) really speak v1, and that
``reflection: v1alpha`` fails clearly against it; a server with only v1alpha shows auto
mode falling back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tribridge.interop.idl_peers import ReadyProcess, start_grpc_js_server
from tribridge.interop.testing import BackgroundLoop, http_request

from tests.interop.test_idl_gateway import PERSON, SVC, idl_config


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ReadyProcess]]:
    with (
        start_grpc_js_server("v1") as v1,
        start_grpc_js_server("v1alpha") as v1alpha,
    ):
        yield {"v1": v1, "v1alpha": v1alpha}


def _describe(bg: BackgroundLoop, port: int, reflection: str) -> tuple[int, object]:
    gw = bg.start_gateway(idl_config(port, f"{{reflection: {reflection}}}"))
    return http_request(gw.port, "POST", f"/{SVC}/Describe", PERSON)


@pytest.mark.parametrize(
    ("server", "reflection"),
    [("v1", "v1"), ("v1", "true"), ("v1alpha", "v1alpha"), ("v1alpha", "true")],
)
def test_reflection_against_grpc_js(bg, servers, server: str, reflection: str) -> None:  # type: ignore[no-untyped-def]
    status, body = _describe(bg, servers[server].port, reflection)
    assert status == 200, body
    assert body["server"] == "grpc-js"
    assert body["idPlusOne"] == "9007199254740994" and body["tagCount"] == 3
    assert body["countsTotal"] == "42" and body["city"] == "Zürich"


def test_a_version_the_server_lacks_is_a_clear_error(bg, servers) -> None:  # type: ignore[no-untyped-def]
    status, body = _describe(bg, servers["v1"].port, "v1alpha")
    assert (status, body["error"]["code"]) == (503, "descriptors_unavailable"), body
    # usually "… has no v1alpha reflection" (UNIMPLEMENTED); grpc core sometimes reports
    # the refused stream as INTERNAL instead -- either way a reflection error, not a hang
    assert "reflection" in body["error"]["message"], body
