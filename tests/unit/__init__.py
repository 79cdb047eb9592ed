"""Unit tests: one module at a time, no sockets to other processes (codecs, config model, parsers, balancers)."""
