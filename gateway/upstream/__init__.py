"""Provider connections: Dubbo2 pools, Triple over h2 and HTTP/1.1."""
