package com.tribridge.interop;

import java.io.Serializable;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.sql.Timestamp;
import java.util.Date;
import java.util.List;
import java.util.Map;

/**
 * Interop POJO with Java value-class fields (BigDecimal, BigInteger, java.sql.Timestamp)
 * beside untyped ones, for class-tagged JSON sent with no configured field types.
 */
public class Order implements Serializable {
    private static final long serialVersionUID = 1L;

    public BigDecimal amount;
    public BigInteger count;
    public Timestamp placed;
    public Date due;
    public Object any;
    public List<Object> items;
    public Map<String, Object> extras;

    public Order() {
    }
}
