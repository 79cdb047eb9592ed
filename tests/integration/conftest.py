"""Fixtures shared by the integration modules (the session-wide ones are in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from tribridge.interop.testing import BackgroundLoop


@pytest.fixture(scope="module")
def provider(bg: BackgroundLoop) -> Any:
    """The demo Dubbo2 provider (version 1.0.0) on the module's loop, one per module."""
    return bg.start_provider(version="1.0.0")
