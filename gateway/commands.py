"""Sub-commands beyond ``codec``: demo, run, call (filled in by the gateway modules)."""

from __future__ import annotations

import argparse


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    return None
