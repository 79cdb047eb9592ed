package com.tribridge.interop;

import java.io.Serializable;
import java.util.Date;
import java.util.List;
import java.util.Map;

/** Interop POJO: primitives, a date, a list and a map. */
public class User implements Serializable {
    private static final long serialVersionUID = 1L;

    public long id;
    public String name;
    public int age;
    public double score;
    public boolean active;
    public Date created;
    public List<String> tags;
    public Map<String, Object> attrs;

    public User() {
    }
}
