package com.tribridge.compat;

/** Exported in two groups and two versions on one port: each answer names its export. */
public interface GreetService {
    String greet(String name);
}
