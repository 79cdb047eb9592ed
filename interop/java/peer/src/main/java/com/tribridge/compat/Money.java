package com.tribridge.compat;

import java.io.Serializable;
import java.math.BigDecimal;
import java.util.List;

/** BigDecimal inside a POJO and inside a collection field. */
public class Money implements Serializable {
    private static final long serialVersionUID = 1L;
    private BigDecimal amount;
    private String currency;
    private List<BigDecimal> history;

    public Money() {}
    public BigDecimal getAmount() { return amount; }
    public void setAmount(BigDecimal amount) { this.amount = amount; }
    public String getCurrency() { return currency; }
    public void setCurrency(String currency) { this.currency = currency; }
    public List<BigDecimal> getHistory() { return history; }
    public void setHistory(List<BigDecimal> history) { this.history = history; }
}
