"""Schemathesis against the gateway's own ``/openapi.json`` (the demo service behind it).

Every operation of the document is exercised with generated requests (a fixed number of
examples per operation, derandomized, no deadline) and every response is checked against the
document: status codes, content types, headers and body schemas. A 5xx must be one of the
documented errors the gateway maps a provider's answer to, never the listener's
``internal_error`` (the demo's ``fail`` method throws by design: 500 ``provider_exception``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import CHECKS
from tribridge.cli.commands import DEMO_SERVICE, demo_config
from tribridge.interop.testing import BackgroundLoop

#: examples per operation: enough to cover each schema's shapes, bounded in time
MAX_EXAMPLES = 30
#: 5xx codes that are answers, not crashes (README "Errors")
MAPPED_5XX = {"provider_exception", "provider_error", "no_provider", "connect_failed",
              "provider_overloaded", "upstream_timeout", "connection_lost"}


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with BackgroundLoop() as bg:
        provider = bg.start_provider(version="1.0.0")
        doc = yaml.safe_load(demo_config(provider.port, 0))
        # slow(int millis) sleeps as long as it is told: not for a fuzzer
        doc["auto_routes"]["expose"] = [f"{DEMO_SERVICE}#[!s]*", f"{DEMO_SERVICE}#sum"]
        doc["access_log"] = False
        gw = bg.start_gateway(yaml.safe_dump(doc))
        yield f"http://127.0.0.1:{gw.port}"


def _no_crash(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code >= 500:
        code = response.json()["error"]["code"]
        assert code in MAPPED_5XX, f"{response.status_code} {code}: {response.text[:300]}"
    return None


def test_schemathesis_finds_nothing(base: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    excluded = [c for c in CHECKS.get_all() if getattr(c, "__name__", "") == "not_a_server_error"]
    failures: list[str] = []
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 18  # 4 explicit routes + the demo's auto-routed methods

    for op in ops:

        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(
                base_url=base, excluded_checks=excluded, additional_checks=[_no_crash], timeout=10
            )

        try:
            run()
        except (Exception, BaseExceptionGroup) as e:  # every operation's findings, then fail
            failures.append(f"{op.label}: {str(e)[:1500]}")
    assert not failures, "\n\n".join(failures)
