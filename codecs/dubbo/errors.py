"""The Dubbo2 codec's error type, in a module of its own (never compiled) so the compiled and
the pure-Python frame / message modules raise the very same class."""


class DubboProtocolError(ValueError):
    """Any malformed Dubbo2 frame or body (wraps hessian errors too)."""
