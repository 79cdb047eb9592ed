"""The ``tribridge`` command and the Python client."""
