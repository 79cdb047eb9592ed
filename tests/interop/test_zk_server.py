"""The ZooKeeper launcher: a real server that answers four-letter words and kazoo."""

from __future__ import annotations

from kazoo.client import KazooClient
from tribridge.interop.zk_server import four_letter


def test_zookeeper_answers_ruok_and_kazoo(zookeeper_server) -> None:
    assert four_letter(zookeeper_server.port, "ruok") == "imok"
    assert "Mode: standalone" in four_letter(zookeeper_server.port, "srvr")
    client = KazooClient(zookeeper_server.address)
    client.start(10)
    try:
        client.ensure_path("/tribridge-test/launcher")
        assert "launcher" in client.get_children("/tribridge-test")
    finally:
        client.stop()
        client.close()
