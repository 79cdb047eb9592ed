# Cython declarations for messages.py: the compiled build reads the SAME messages.py with
# these C types; the .py stays the reference (and the pure-Python fallback).

# an extension type: one is built per response decoded, ~4x cheaper than a Python class
cdef class Result:
    cdef public object request_id, status, flag, value, exception, error, attachments, event
