# Cython declarations for encoder.py: the compiled build reads the SAME encoder.py with these
# C types; the .py stays the reference (and the pure-Python fallback).
cimport cython

cdef object _pack_i, _pack_q, _pack_d, _pack_H, _ASTRAL, _EPOCH
cdef object INT_MIN, INT_MAX, LONG_MIN, LONG_MAX
cdef Py_ssize_t STRING_CHUNK, BINARY_CHUNK

cpdef str to_utf16_units(str s)


cdef class Encoder:
    cdef public bytearray buf
    cdef public dict _refs
    cdef public dict _classes
    cdef public dict _types
    cdef public Py_ssize_t max_depth

    cpdef bytes getvalue(self)
    cpdef write_null(self)
    cpdef write_bool(self, object value)
    cpdef write_int(self, object v)
    cpdef write_long(self, object v)
    cpdef write_double(self, double v)
    cpdef write_date_ms(self, object ms)
    @cython.locals(n=Py_ssize_t, off=Py_ssize_t, sub=Py_ssize_t, rest=Py_ssize_t, buf=bytearray)
    cpdef write_string(self, str s)
    @cython.locals(n=Py_ssize_t, off=Py_ssize_t, rest=Py_ssize_t, buf=bytearray)
    cpdef write_binary(self, object data)
    cpdef write_type(self, str type_name)
    cpdef bint add_ref(self, object obj) except -1
    @cython.locals(buf=bytearray)
    cpdef write_list_header(self, Py_ssize_t length, object type_name)
    cpdef write_map_begin(self, object type_name)
    cpdef write_object_begin(self, str cls, tuple field_names)
    @cython.locals(d=Py_ssize_t)
    cpdef write(self, object value, Py_ssize_t _depth=*)
