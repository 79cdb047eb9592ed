package com.tribridge.compat;

/** Answers with the group and version it was exported under. */
public class GreetServiceImpl implements GreetService {
    private final String tag;

    public GreetServiceImpl(String tag) { this.tag = tag; }

    public String greet(String name) { return "hello " + name + " from " + tag; }
}
