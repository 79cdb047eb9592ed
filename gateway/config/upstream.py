"""Settings for provider connections (the ``upstream:`` section).

Read by the pools and Triple transports in ``tribridge.upstream``; defined here so that the
config model validates them without importing the connection code.
"""

from __future__ import annotations

from dataclasses import dataclass

from tribridge.codecs.dubbo.frame import DEFAULT_MAX_PAYLOAD


@dataclass
class UpstreamSettings:
    connections_per_instance: int = 1
    connect_timeout: float = 3.0
    heartbeat_interval: float = 30.0
    max_payload: int = DEFAULT_MAX_PAYLOAD
    eject_after: int = 5  # consecutive failures before an instance is ejected
    eject_seconds: float = 10.0
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    #: HTTP/2 client for Triple calls: "lean", "h2" (gateway/upstream/triple_h2.py) or "grpcio"
    triple_client: str = "lean"
    #: a connection's transport high-water mark: past it the provider is "not reading"
    write_buffer_bytes: int = 256 * 1024
    #: request bytes queued for a provider that stopped reading; past it calls fail fast
    max_queued_bytes: int = 16 * 1024 * 1024
    #: the calls of one loop iteration go to a provider in one write, but a batch is written
    #: as soon as it holds this many frames or bytes: the provider starts on it while the
    #: gateway reads on (measured: 16 frames, +16 % throughput at 50 requests in flight)
    batch_frames: int = 16
    batch_bytes: int = 64 * 1024


#: the Triple (gRPC over HTTP/2) client implementations behind ``TripleClient.unary``
TRIPLE_CLIENTS = ("grpcio", "h2", "lean")


#: the load balancers ``tribridge.upstream.pool.BALANCERS`` implements, by config name
BALANCER_NAMES = ("random", "roundrobin", "leastactive", "consistenthash")
