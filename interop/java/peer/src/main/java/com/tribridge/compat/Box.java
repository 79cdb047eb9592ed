package com.tribridge.compat;

import java.io.Serializable;
import java.util.List;

/** Generic fields: erased to Object / List on the wire. */
public class Box<T> implements Serializable {
    private static final long serialVersionUID = 1L;
    private String label;
    private T value;
    private List<T> items;

    public Box() {}
    public String getLabel() { return label; }
    public void setLabel(String label) { this.label = label; }
    public T getValue() { return value; }
    public void setValue(T value) { this.value = value; }
    public List<T> getItems() { return items; }
    public void setItems(List<T> items) { this.items = items; }
}
