package com.tribridge.compat;

/** An unchecked custom exception with a field. */
public class CompatRuntimeException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private String reason;

    public CompatRuntimeException() {}
    public CompatRuntimeException(String message, String reason) {
        super(message);
        this.reason = reason;
    }
    public String getReason() { return reason; }
}
