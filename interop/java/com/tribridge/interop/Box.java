package com.tribridge.interop;

import java.io.Serializable;

/** Interop POJO with an untyped field, an enum and primitive/String arrays. */
public class Box implements Serializable {
    private static final long serialVersionUID = 1L;

    public Object value;
    public Color color;
    public long[] longs;
    public String[] names;

    public Box() {
    }
}
