"""Shared test helpers (raw Dubbo2 client, corpora, case tables); imported as ``tests.helpers.X``."""
