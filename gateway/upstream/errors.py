"""Why an upstream call got no provider answer: one exception per reason.

Two facts drive what the attempt loop (``invoke.attempts``) does with each: ``sent`` —
whether the request may have reached the provider (a request that never left may go to
another instance, whatever the method) — and ``ejects`` — whether the failure counts
against the instance's health (outlier ejection).  ``code`` is the failure's name in the
gateway's ``error.code`` vocabulary, and the key of ``statuses.UPSTREAM_TO_DUBBO``.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """Base of call failures that never produced a provider answer."""

    code = "upstream_error"
    sent = True  # whether the request may have reached the provider
    #: counts against the instance (the attempt loop records it); a failed connect is
    #: counted by the pool that tried it, once however many calls waited for it
    ejects = True


class ConnectFailed(UpstreamError):
    code = "connect_failed"
    sent = False
    ejects = False


class NoEndpoint(UpstreamError):
    code = "no_endpoint"
    sent = False
    ejects = False


class CallTimeout(UpstreamError):
    code = "timeout"


class ConnectionLost(UpstreamError):
    code = "connection_lost"


class UpstreamBusy(UpstreamError):
    """The provider stopped reading and ``max_queued_bytes`` wait for it: fail fast
    (HTTP 503, Dubbo status 100) instead of queueing without bound."""

    code = "upstream_backlogged"
    sent = False


class RelayDown(ConnectFailed):
    """A relay link (``relay:NAME`` endpoint) is down or not configured."""

    code = "relay_link_down"
