"""Linux network namespaces for tests (root only): create, connect with veth pairs, run in.

Used where a peer must not see loopback (Apache Dubbo refuses to register 127.x) or where the
test is about real network isolation.  Everything is named after the test process's PID, so
parallel runs do not collide, and ``delete()`` removes what ``add()`` created.
"""

from __future__ import annotations

import os
import subprocess
import sys


def run_ip(*cmd: str) -> None:
    """One ``ip``/``sysctl`` command; a non-zero exit raises with its stderr."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")


class Namespaces:
    """Named namespaces plus veth pairs between them (or between one and the root namespace)."""

    def __init__(self, prefix: str) -> None:
        self.tag = f"{prefix}{os.getpid() % 100000}"
        self.created: list[str] = []
        self.root_links: list[str] = []

    def name(self, key: str) -> str:
        return f"{self.tag}{key}"

    def add(self, *keys: str) -> None:
        """Create namespaces (replacing leftovers of an earlier process with our PID), lo up."""
        existing = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, timeout=10
        ).stdout.split()
        for key in keys:
            ns = self.name(key)
            if ns in existing:
                run_ip("ip", "netns", "del", ns)
            run_ip("ip", "netns", "add", ns)
            self.created.append(ns)
            run_ip("ip", "-n", ns, "link", "set", "lo", "up")

    def veth(
        self, name: str, left: str | None, left_cidr: str, right: str, right_cidr: str
    ) -> None:
        """A veth pair ``{tag}{name}0`` (in ``left``, or the root namespace when None) and
        ``{tag}{name}1`` (in ``right``); addresses as ``ip/prefixlen``."""
        l_dev, r_dev = f"{self.tag}{name}0", f"{self.tag}{name}1"
        if left is None:
            with_stale = subprocess.run(["ip", "link", "show", l_dev], capture_output=True)
            if with_stale.returncode == 0:
                run_ip("ip", "link", "del", l_dev)
            run_ip("ip", "link", "add", l_dev, "type", "veth", "peer", "name", r_dev,
                   "netns", self.name(right))  # fmt: skip
            self.root_links.append(l_dev)
            run_ip("ip", "addr", "add", left_cidr, "dev", l_dev)
            run_ip("ip", "link", "set", l_dev, "up")
        else:
            run_ip("ip", "link", "add", l_dev, "netns", self.name(left), "type", "veth",
                   "peer", "name", r_dev, "netns", self.name(right))  # fmt: skip
            run_ip("ip", "-n", self.name(left), "addr", "add", left_cidr, "dev", l_dev)
            run_ip("ip", "-n", self.name(left), "link", "set", l_dev, "up")
        run_ip("ip", "-n", self.name(right), "addr", "add", right_cidr, "dev", r_dev)
        run_ip("ip", "-n", self.name(right), "link", "set", r_dev, "up")

    def exec_prefix(self, key: str) -> list[str]:
        return ["ip", "netns", "exec", self.name(key)]

    def delete(self) -> None:
        """Remove every namespace and root-side link created (errors go to stderr)."""
        for dev in reversed(self.root_links):
            try:
                run_ip("ip", "link", "del", dev)
            except RuntimeError as e:  # gone with its peer's namespace already
                if "Cannot find device" not in str(e):
                    print(f"cleanup: {e}", file=sys.stderr)
        self.root_links.clear()
        for ns in reversed(self.created):
            try:
                run_ip("ip", "netns", "del", ns)
            except RuntimeError as e:
                print(f"cleanup: {e}", file=sys.stderr)
        self.created.clear()
