package com.tribridge.interop;

import java.io.Serializable;

/** Interop POJO used for shared references (Person.home == Person.work). */
public class Address implements Serializable {
    private static final long serialVersionUID = 1L;

    public String city;
    public String street;
    public int zip;

    public Address() {
    }
}
