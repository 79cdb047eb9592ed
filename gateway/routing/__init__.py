"""From an HTTP request to a service call and back: ``app`` (the Gateway), ``state`` (the
routing state a reload swaps), ``directory`` (every service the gateway calls), ``routes``,
``params``, ``render``, ``readiness``, ``serve`` and ``idl_routes`` (docs/architecture.md)."""
