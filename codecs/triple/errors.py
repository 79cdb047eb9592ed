"""The one error type of the Triple codec."""


class TripleProtocolError(ValueError):
    """Malformed gRPC framing, wrapper protobuf or status header."""
