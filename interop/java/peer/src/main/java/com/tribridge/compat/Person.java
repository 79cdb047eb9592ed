package com.tribridge.compat;

import java.io.Serializable;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.LocalDate;
import java.util.Date;
import java.util.List;
import java.util.Map;

/** A POJO with one field of most kinds the README's table lists. */
public class Person implements Serializable {
    private static final long serialVersionUID = 1L;
    private String name;
    private int age;
    private Integer score;
    private long id;
    private boolean active;
    private double height;
    private Color color;
    private BigDecimal balance;
    private BigInteger big;
    private Date born;
    private LocalDate day;
    private List<String> tags;
    private Map<String, Integer> counts;
    private Address address;

    public Person() {}
    public String getName() { return name; }
    public void setName(String name) { this.name = name; }
    public int getAge() { return age; }
    public void setAge(int age) { this.age = age; }
    public Integer getScore() { return score; }
    public void setScore(Integer score) { this.score = score; }
    public long getId() { return id; }
    public void setId(long id) { this.id = id; }
    public boolean isActive() { return active; }
    public void setActive(boolean active) { this.active = active; }
    public double getHeight() { return height; }
    public void setHeight(double height) { this.height = height; }
    public Color getColor() { return color; }
    public void setColor(Color color) { this.color = color; }
    public BigDecimal getBalance() { return balance; }
    public void setBalance(BigDecimal balance) { this.balance = balance; }
    public BigInteger getBig() { return big; }
    public void setBig(BigInteger big) { this.big = big; }
    public Date getBorn() { return born; }
    public void setBorn(Date born) { this.born = born; }
    public LocalDate getDay() { return day; }
    public void setDay(LocalDate day) { this.day = day; }
    public List<String> getTags() { return tags; }
    public void setTags(List<String> tags) { this.tags = tags; }
    public Map<String, Integer> getCounts() { return counts; }
    public void setCounts(Map<String, Integer> counts) { this.counts = counts; }
    public Address getAddress() { return address; }
    public void setAddress(Address address) { this.address = address; }

    @Override public String toString() {
        return "Person(" + name + "," + age + "," + score + "," + id + "," + active + "," + height + ","
            + color + "," + balance + "," + big + "," + (born == null ? null : born.getTime()) + ","
            + day + "," + tags + "," + counts + "," + address + ")";
    }
}
