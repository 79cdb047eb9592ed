"""Every status table in ``tribridge.statuses``: each row pinned, and each table total over
the statuses it maps from (every non-OK Dubbo2 status, every non-OK gRPC code)."""

from __future__ import annotations

from tribridge import statuses
from tribridge.codecs.dubbo.frame import OK, STATUS_NAMES
from tribridge.codecs.triple import Code

GRPC_ERRORS = {int(c) for c in Code if c != Code.OK}
DUBBO_ERRORS = set(STATUS_NAMES) - {OK}


def test_grpc_to_http_rows() -> None:
    assert set(statuses.GRPC_TO_HTTP) == GRPC_ERRORS
    assert {int(c): v for c, v in statuses.GRPC_TO_HTTP.items()} == {
        1: (499, "cancelled"),
        2: (500, "provider_error"),
        3: (400, "provider_rejected_request"),
        4: (504, "upstream_timeout"),
        5: (404, "not_found"),
        6: (409, "conflict"),
        7: (403, "permission_denied"),
        8: (429, "provider_overloaded"),
        9: (400, "failed_precondition"),
        10: (409, "aborted"),
        11: (400, "out_of_range"),
        12: (404, "not_found"),
        13: (500, "provider_error"),
        14: (503, "provider_unavailable"),
        15: (500, "provider_error"),
        16: (401, "unauthenticated"),
    }
    assert statuses.grpc_to_http(Code.UNIMPLEMENTED) == (404, "not_found")
    assert statuses.grpc_to_http(99) == (502, "provider_error")  # outside the spec
    # google.rpc's HTTP mapping, UNIMPLEMENTED aside (404: unknown method)
    google = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409}
    google |= {11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401}
    ours = {int(c): h for c, (h, _) in statuses.GRPC_TO_HTTP.items()}
    assert {c: h for c, h in ours.items() if c != Code.UNIMPLEMENTED} == {
        c: h for c, h in google.items() if c != Code.UNIMPLEMENTED
    }


def test_dubbo_to_http_rows() -> None:
    assert set(statuses.DUBBO_TO_HTTP) == DUBBO_ERRORS
    assert statuses.DUBBO_TO_HTTP == {
        25: (502, "provider_error"),
        30: (504, "provider_timeout"),
        31: (504, "provider_timeout"),
        35: (502, "provider_error"),
        40: (400, "provider_rejected_request"),
        50: (502, "provider_error"),
        60: (404, "not_found"),
        70: (502, "provider_error"),  # 404 when the message says so (dubbo_failure_to_http)
        80: (502, "provider_error"),
        90: (502, "provider_error"),
        100: (503, "provider_overloaded"),
    }
    assert statuses.dubbo_to_http(99) == (502, "provider_error")


def test_grpc_to_dubbo_rows() -> None:
    assert set(statuses.GRPC_TO_DUBBO) == GRPC_ERRORS
    special = {4: 31, 3: 40, 5: 60, 12: 60, 8: 100}
    assert {int(c): s for c, s in statuses.GRPC_TO_DUBBO.items()} == {
        c: special.get(c, 70) for c in GRPC_ERRORS
    }
    assert statuses.grpc_to_dubbo(99) == 70
    assert set(statuses.GRPC_TO_DUBBO.values()) <= DUBBO_ERRORS


def test_http_to_grpc_rows() -> None:
    # gRPC's doc/http-grpc-status-mapping.md (HTTP/2 reply without grpc-status)
    assert {h: int(c) for h, c in statuses.HTTP2_TO_GRPC.items()} == {
        400: 13,
        401: 16,
        403: 7,
        404: 12,
        429: 14,
        502: 14,
        503: 14,
        504: 14,
    }
    # the Triple spec (dubbo-node's codeFromHttpStatus) for HTTP/1.1 error replies
    assert {h: int(c) for h, c in statuses.HTTP1_TO_GRPC.items()} == {
        400: 3,
        401: 16,
        403: 7,
        404: 12,
        408: 4,
        409: 10,
        412: 9,
        413: 8,
        415: 13,
        429: 14,
        431: 8,
        502: 14,
        503: 14,
        504: 14,
    }
    for status in (200, 418, 500):  # open space: anything else is UNKNOWN
        assert statuses.http2_to_grpc(status) == Code.UNKNOWN
        assert statuses.http1_to_grpc(status) == Code.UNKNOWN
    assert (
        set(statuses.HTTP2_TO_GRPC.values()) | set(statuses.HTTP1_TO_GRPC.values()) <= GRPC_ERRORS
    )


def test_reset_to_grpc_rows() -> None:
    assert {e: int(c) for e, c in statuses.RESET_TO_GRPC.items()} == {7: 14, 8: 1, 11: 8, 12: 7}
    for error_code in (0x0, 0x1, 0x2, 0x9, 0xD):  # NO_ERROR, PROTOCOL, INTERNAL, COMPRESSION ...
        assert statuses.reset_to_grpc(error_code) == Code.INTERNAL


def _subclasses(cls: type) -> set[type]:
    out = set(cls.__subclasses__())
    for c in list(out):
        out |= _subclasses(c)
    return out


def test_upstream_to_dubbo_rows() -> None:
    from tribridge.codecs.dubbo.frame import (
        SERVER_THREADPOOL_EXHAUSTED_ERROR,
        SERVER_TIMEOUT,
        SERVICE_ERROR,
    )
    from tribridge.upstream import errors

    # total over every upstream failure the gateway raises (relay links included)
    failures = _subclasses(errors.UpstreamError) | {errors.UpstreamError}
    assert {c.code for c in failures} == set(statuses.UPSTREAM_TO_DUBBO)
    # a consumer acts on these two; every other failure is "no provider answered" (70)
    acted_on = {
        errors.CallTimeout: SERVER_TIMEOUT,
        errors.UpstreamBusy: SERVER_THREADPOOL_EXHAUSTED_ERROR,
    }
    for c in failures:
        assert statuses.upstream_to_dubbo(c.code) == acted_on.get(c, SERVICE_ERROR), c
    assert statuses.upstream_to_dubbo("something_new") == SERVICE_ERROR


# Java texts as Dubbo providers send them (demo provider and Apache Dubbo 2.7 / 3.3)
NOT_FOUND_REPLIES = [
    (
        70,
        "org.apache.dubbo.remoting.RemotingException: Not found exported service: "
        "g/com.x.S:1.0.0:20880 in [com.x.S:20880], may be version or group mismatch",
    ),
    (70, "org.apache.dubbo.rpc.RpcException: No such method nope in class interface com.x.S"),
    (
        40,
        "Fail to decode request due to: java.io.IOException: Service com.x.S:9.9.9 not found, "
        "invocation rejected.",
    ),
    (40, "Service not found:com.x.S, nope"),
    (40, "Fail to decode request due to: RpcInvocation [methodName=$invoke, parameterTypes=null]"),
    (60, "SERVICE_NOT_FOUND"),
]


def test_unknown_service_or_method_is_404_not_found() -> None:
    for status, text in NOT_FOUND_REPLIES:
        assert statuses.dubbo_failure_to_http(status, text) == (404, "not_found"), text


def test_other_failures_keep_their_table_row() -> None:
    assert statuses.dubbo_failure_to_http(70, "java.lang.IllegalStateException: boom") == (
        502,
        "provider_error",
    )
    assert statuses.dubbo_failure_to_http(40, "java.lang.ClassNotFoundException: a.B") == (
        400,
        "provider_rejected_request",
    )
    # a timeout or a full pool stays one, whatever its text says
    assert statuses.dubbo_failure_to_http(31, "waiting: method not found yet") == (
        504,
        "provider_timeout",
    )
    assert statuses.dubbo_failure_to_http(100, "thread not found") == (503, "provider_overloaded")


def test_java_stack_trace_is_cut_off() -> None:
    head = "org.apache.dubbo.rpc.RpcException: No such method nope in class interface com.x.S"
    text = (
        f"{head}\n{head}\n\tat org.apache.dubbo.rpc.filter.GenericFilter.invoke(GenericFilter.java:96)"
        "\n\tat org.apache.dubbo.rpc.cluster.filter.FilterChainBuilder$CopyOfFilterChainNode"
        ".invoke(FilterChainBuilder.java:349)\nCaused by: java.lang.NoSuchMethodException: nope"
        "\n\t... 27 more\n"
    )
    assert statuses.split_java_trace(text) == (head, text)
    assert statuses.split_java_trace("two\nlines, no frames") == ("two\nlines, no frames", "")
