# Cython declarations for frame.py: the compiled build reads the SAME frame.py with these
# C types; the .py stays the reference (and the pure-Python fallback).
cimport cython

cdef object _HEADER


cdef class FrameDecoder:
    cdef public bytearray _buf
    cdef public Py_ssize_t _skip
    cdef public Py_ssize_t _skip_max
    cdef public object max_payload
    cdef public bint skip_oversized

    @cython.locals(buf=bytearray, frames=list, pos=Py_ssize_t, n=Py_ssize_t, end=Py_ssize_t, avail=Py_ssize_t)
    cpdef list feed(self, object data)
