"""Authentication, access guard, class policy, rate limits, TLS and certificates."""
