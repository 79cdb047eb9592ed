package com.tribridge.compat;

import java.io.Serializable;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Collections of POJOs and enums with non-String map keys. */
public class Page implements Serializable {
    private static final long serialVersionUID = 1L;
    private List<Person> people;
    private Map<Long, Person> byId;
    private Set<Color> colors;
    private int[] numbers;

    public Page() {}
    public List<Person> getPeople() { return people; }
    public void setPeople(List<Person> people) { this.people = people; }
    public Map<Long, Person> getById() { return byId; }
    public void setById(Map<Long, Person> byId) { this.byId = byId; }
    public Set<Color> getColors() { return colors; }
    public void setColors(Set<Color> colors) { this.colors = colors; }
    public int[] getNumbers() { return numbers; }
    public void setNumbers(int[] numbers) { this.numbers = numbers; }
}
