"""tribridge.codecs"""

from ._accel import install_source_finder, pure_python_requested

if pure_python_requested():
    install_source_finder()
