# Cython declarations for decoder.py: the compiled build reads the SAME decoder.py with these
# C types; the .py stays the reference (and the pure-Python fallback).
cimport cython

cdef object _unpack_i, _unpack_q, _unpack_d, _unpack_h, _unpack_H, _PENDING
cdef dict _HANDLERS, _PLAIN_CONVERTERS

cpdef str _join_surrogates(str s)
@cython.locals(tag=int)
cpdef bint _is_int_tag(int tag)


cdef class Decoder:
    cdef readonly bytes data
    cdef public Py_ssize_t pos
    cdef public Py_ssize_t end
    cdef public bint typed
    cdef public Py_ssize_t max_depth
    cdef public long long _budget
    cdef public list _refs
    cdef public list _classes
    cdef public list _types
    cdef public list _class_keys
    cdef public Py_ssize_t java_serialized

    @cython.locals(pos=Py_ssize_t)
    cdef Py_ssize_t _need(self, Py_ssize_t n) except -1
    @cython.locals(pos=Py_ssize_t)
    cdef int _byte(self) except -1
    cpdef bint at_end(self)
    cpdef object read(self)
    @cython.locals(tag=int)
    cpdef object read_int(self)
    @cython.locals(tag=int)
    cpdef object read_string(self)
    @cython.locals(tag=int, p=Py_ssize_t, n=Py_ssize_t, data=bytes)
    cpdef object _read(self, Py_ssize_t depth)
    cdef object _long(self, object v)
    cdef bytes _binary(self, bytes b)
    @cython.locals(data=bytes, pos=Py_ssize_t, end=Py_ssize_t, i=Py_ssize_t, n=Py_ssize_t, b=int, chunk=bytes, sur=bint, text=str)
    cdef str _string_body(self, Py_ssize_t units)
    @cython.locals(p=Py_ssize_t)
    cdef str _chunked_string(self, int tag, Py_ssize_t depth)
    @cython.locals(p=Py_ssize_t, n=Py_ssize_t, data=bytes)
    cdef bytes _chunked_binary(self, int tag, Py_ssize_t depth)
    @cython.locals(tag=int)
    cdef str _type(self)
    cdef Py_ssize_t _length(self, Py_ssize_t n) except -1
    cdef int _spend(self, Py_ssize_t n) except -1
    @cython.locals(d=Py_ssize_t, i=Py_ssize_t)
    cdef object _list(self, object type_name, Py_ssize_t n, Py_ssize_t depth)
    @cython.locals(d=Py_ssize_t, data=bytes)
    cdef object _var_list(self, object type_name, Py_ssize_t depth)
    @cython.locals(d=Py_ssize_t, data=bytes, slot=Py_ssize_t)
    cdef object _map(self, object type_name, Py_ssize_t depth)
    @cython.locals(count=Py_ssize_t, fields=list)
    cdef int _class_def(self) except -1
    @cython.locals(d=Py_ssize_t, slot=Py_ssize_t, fields=tuple, out=dict)
    cdef object _instance(self, Py_ssize_t idx, Py_ssize_t depth)

cpdef object _d_int32(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_long64(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_double0(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_double1(Decoder self, int tag, Py_ssize_t depth)
@cython.locals(b=int)
cpdef object _d_double_b(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_double_s(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_date_ms(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_date_min(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_string_chunk(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_binary_chunk(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_typed_map(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_var_typed_list(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_fixed_typed_list(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_var_list(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_fixed_list(Decoder self, int tag, Py_ssize_t depth)
cpdef object _d_object(Decoder self, int tag, Py_ssize_t depth)
