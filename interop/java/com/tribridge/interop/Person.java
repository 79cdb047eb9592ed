package com.tribridge.interop;

import java.io.Serializable;

/** Interop POJO with two Address fields, so that one instance can be shared. */
public class Person implements Serializable {
    private static final long serialVersionUID = 1L;

    public String name;
    public Address home;
    public Address work;

    public Person() {
    }
}
