package com.tribridge.compat;

/** A checked business exception with fields of its own. */
public class CompatException extends Exception {
    private static final long serialVersionUID = 1L;
    private int code;
    private String detail;

    public CompatException() {}
    public CompatException(String message, int code, String detail) {
        super(message);
        this.code = code;
        this.detail = detail;
    }
    public int getCode() { return code; }
    public String getDetail() { return detail; }
}
