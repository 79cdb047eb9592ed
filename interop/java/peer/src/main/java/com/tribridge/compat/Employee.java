package com.tribridge.compat;

/** A subclass sent in a {@link Person} slot. */
public class Employee extends Person {
    private static final long serialVersionUID = 1L;
    private String company;
    private long salary;

    public Employee() {}
    public String getCompany() { return company; }
    public void setCompany(String company) { this.company = company; }
    public long getSalary() { return salary; }
    public void setSalary(long salary) { this.salary = salary; }
}
