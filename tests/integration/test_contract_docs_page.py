"""The ``/docs`` page in headless Chromium (Debian's ``chromium``, driven by npm
``playwright-core``): Swagger UI loads from the gateway alone, reads ``/openapi.json``, and a
"Try it out" call goes through the gateway to the demo provider. The screenshot is kept as a
test artifact: ``artifacts/contract-docs.png`` (gitignored) and the test's tmp dir.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tribridge.cli.commands import demo_config
from tribridge.interop.peers import NODE_DIR, _require_node_modules
from tribridge.interop.testing import BackgroundLoop

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def test_docs_page_try_it_out(tmp_path: Path) -> None:
    node = _require_node_modules("playwright-core")
    assert Path(CHROMIUM).exists(), "scripts/setup.sh installs Debian's chromium"
    shot = tmp_path / "contract-docs.png"
    with BackgroundLoop() as bg:
        provider = bg.start_provider(version="1.0.0")
        gw = bg.start_gateway(demo_config(provider.port, 0))
        base = f"http://127.0.0.1:{gw.port}"
        r = subprocess.run(
            [node, "docs_page_check.js", base, "/hello/{name}", "name", "Swagger", str(shot), CHROMIUM],
            cwd=NODE_DIR, capture_output=True, text=True, timeout=180,
        )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["status"] == "200" and out["body"] == '"Hello, Swagger"'
    assert out["operations"] >= 20  # 4 explicit routes + the demo's auto-routed methods
    assert "OAS 3.1" in out["title"]
    # everything came from the gateway: no CDN, no validator badge
    assert all(u.startswith(base + "/") for u in out["requests"]), out["requests"]
    assert f"{base}/openapi.json" in out["requests"]
    assert out["console"] == []  # no script errors, no CSP refusals
    assert shot.stat().st_size > 10_000
    kept = ROOT / "artifacts"
    kept.mkdir(exist_ok=True)
    shutil.copy(shot, kept / shot.name)
