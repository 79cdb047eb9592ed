package com.tribridge.interop;

/** Interop enum. */
public enum Color {
    RED, GREEN, BLUE
}
