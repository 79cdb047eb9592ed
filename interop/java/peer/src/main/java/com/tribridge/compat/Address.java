package com.tribridge.compat;

import java.io.Serializable;

/** A nested POJO. */
public class Address implements Serializable {
    private static final long serialVersionUID = 1L;
    private String city;
    private String zip;

    public Address() {}
    public Address(String city, String zip) { this.city = city; this.zip = zip; }
    public String getCity() { return city; }
    public void setCity(String city) { this.city = city; }
    public String getZip() { return zip; }
    public void setZip(String zip) { this.zip = zip; }
    @Override public String toString() { return "Address(" + city + "," + zip + ")"; }
}
