"""Hessian 2.0 codec (sans-IO), compatible with Caucho Hessian 4.0.x and dubbo-hessian-lite."""

from .._accel import implementation
from . import coercion as _coercion
from . import decoder as _decoder
from . import encoder as _encoder
from . import javatime as _javatime
from . import javatypes as _javatypes
from . import plainvalues as _plainvalues
from .coercion import coerce
from .decoder import JAVA_STREAM_MAGIC, MAX_DEPTH, Decoder, decode
from .encoder import Encoder, encode
from .javatypes import (
    JavaType,
    PojoDef,
    TypeRegistry,
    descriptor_of,
    parse_descriptor,
    parse_type,
    parse_types,
)
from .values import (
    Double,
    HessianError,
    HessianObject,
    Int,
    JavaTypeError,
    Long,
    PairMap,
    TypedList,
    TypedMap,
)

#: ``"compiled"`` (the Cython build of decoder.py, encoder.py, javatypes.py, coercion.py ...:
#: ``_accel.ACCELERATED``) or ``"python"``
#: (no compiler at install time, or ``TRIBRIDGE_PURE_PYTHON=1``)
IMPLEMENTATION = implementation((_decoder, _encoder, _javatypes, _coercion, _javatime, _plainvalues))

__all__ = [
    "IMPLEMENTATION",
    "JAVA_STREAM_MAGIC",
    "MAX_DEPTH",
    "Decoder",
    "Double",
    "Encoder",
    "HessianError",
    "HessianObject",
    "Int",
    "JavaType",
    "JavaTypeError",
    "Long",
    "PairMap",
    "PojoDef",
    "TypeRegistry",
    "TypedList",
    "TypedMap",
    "coerce",
    "decode",
    "descriptor_of",
    "encode",
    "parse_descriptor",
    "parse_type",
    "parse_types",
]
