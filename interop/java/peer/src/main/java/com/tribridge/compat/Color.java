package com.tribridge.compat;

/** An enum as argument, return value, field and collection element. */
public enum Color { RED, GREEN, BLUE }
