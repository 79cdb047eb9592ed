"""tribridge: HTTP/JSON to Dubbo2 / Triple gateway."""

__version__ = "0.1.0"
