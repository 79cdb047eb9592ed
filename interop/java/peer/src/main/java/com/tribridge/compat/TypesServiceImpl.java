package com.tribridge.compat;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.util.Arrays;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

/** Echoes, so that a round trip shows what each side encoded and decoded. */
public class TypesServiceImpl implements TypesService {
    private volatile String touched = "";
    private final String identity;

    public TypesServiceImpl(String identity) { this.identity = identity; }

    public int echoInt(int v) { return v; }
    public Integer echoInteger(Integer v) { return v; }
    public long echoLong(long v) { return v; }
    public Long echoLongBoxed(Long v) { return v; }
    public short echoShort(short v) { return v; }
    public Short echoShortBoxed(Short v) { return v; }
    public byte echoByte(byte v) { return v; }
    public Byte echoByteBoxed(Byte v) { return v; }
    public double echoDouble(double v) { return v; }
    public Double echoDoubleBoxed(Double v) { return v; }
    public float echoFloat(float v) { return v; }
    public Float echoFloatBoxed(Float v) { return v; }
    public boolean echoBool(boolean v) { return v; }
    public Boolean echoBoolBoxed(Boolean v) { return v; }
    public char echoChar(char v) { return v; }
    public Character echoCharBoxed(Character v) { return v; }
    public String echoString(String v) { return v; }
    public BigDecimal echoBigDecimal(BigDecimal v) { return v; }
    public BigInteger echoBigInteger(BigInteger v) { return v; }
    public Date echoDate(Date v) { return v; }
    public LocalDate echoLocalDate(LocalDate v) { return v; }
    public LocalTime echoLocalTime(LocalTime v) { return v; }
    public LocalDateTime echoLocalDateTime(LocalDateTime v) { return v; }
    public Instant echoInstant(Instant v) { return v; }
    public Color echoColor(Color v) { return v; }
    public List<Color> echoColors(List<Color> v) { check(v, Color.class); return v; }
    public byte[] echoBytes(byte[] v) { return v; }
    public int[] echoInts(int[] v) { return v; }
    public long[] echoLongs(long[] v) { return v; }
    public double[] echoDoubles(double[] v) { return v; }
    public String[] echoStrings(String[] v) { return v; }
    public Person[] echoPersons(Person[] v) { return v; }
    public List<String> echoList(List<String> v) { check(v, String.class); return v; }
    public Set<Integer> echoSet(Set<Integer> v) { check(v, Integer.class); return v; }
    public Map<String, List<Integer>> echoMapOfLists(Map<String, List<Integer>> v) {
        if (v != null) {
            check(v.keySet(), String.class);
            for (List<Integer> l : v.values()) check(l, Integer.class);
        }
        return v;
    }
    public Map<Long, String> echoLongKeys(Map<Long, String> v) {
        if (v != null) check(v.keySet(), Long.class);
        return v;
    }
    public Map<Color, Integer> echoEnumKeys(Map<Color, Integer> v) {
        if (v != null) { check(v.keySet(), Color.class); check(v.values(), Integer.class); }
        return v;
    }
    public List<Map<String, Person>> echoNested(List<Map<String, Person>> v) {
        if (v != null) for (Map<String, Person> m : v) check(m.values(), Person.class);
        return v;
    }
    public List<BigDecimal> echoDecimals(List<BigDecimal> v) { check(v, BigDecimal.class); return v; }
    public Map<String, BigInteger> echoBigIntegers(Map<String, BigInteger> v) {
        if (v != null) check(v.values(), BigInteger.class);
        return v;
    }
    public Person echoPerson(Person v) { return v; }
    public Money echoMoney(Money v) {
        if (v != null && v.getHistory() != null) check(v.getHistory(), BigDecimal.class);
        return v;
    }
    public Page echoPage(Page v) {
        if (v != null) {
            if (v.getById() != null) check(v.getById().keySet(), Long.class);
            if (v.getColors() != null) check(v.getColors(), Color.class);
            if (v.getPeople() != null) check(v.getPeople(), Person.class);
        }
        return v;
    }
    public Box<Person> echoBox(Box<Person> v) { return v; }
    public Object echoObject(Object v) { return v; }

    public String typeOf(Object v) {
        if (v == null) return "null";
        String s = v.getClass().isArray() ? arrayString(v) : String.valueOf(v);
        return v.getClass().getName() + "=" + s;
    }
    public String describe(Person p) { return p == null ? "null" : p.getClass().getName() + ":" + p.getName(); }
    public Person makeEmployee(String name) {
        Employee e = new Employee();
        e.setName(name);
        e.setCompany("ACME");
        e.setSalary(5000000000L);
        e.setAge(30);
        return e;
    }
    public int sum(int a, int b) { return a + b; }
    public long sum(long a, long b) { return a + b + 1000000000000L; }
    public String sum(String a, String b) { return a + b; }
    public void touch(String v) { touched = v; }
    public String touched() { return touched; }
    public String nullString() { return null; }
    public Person nullPerson() { return null; }
    public List<String> nullList() { return null; }

    public String fail(String kind) throws CompatException {
        if ("checked".equals(kind)) throw new CompatException("checked failure", 42, "detail-42");
        if ("unchecked".equals(kind)) throw new CompatRuntimeException("unchecked failure", "reason-x");
        if ("iae".equals(kind)) throw new IllegalArgumentException("bad argument: " + kind);
        if ("npe".equals(kind)) throw new NullPointerException("npe here");
        return "no failure: " + kind;
    }
    public CompletableFuture<String> greetAsync(final String name) {
        return CompletableFuture.supplyAsync(() -> "async hello, " + name);
    }
    public String attachment(String key) {
        String value = Ctx.requestAttachment(key);
        Ctx.replyAttachment("tb-reply", "reply-" + value);
        return value;
    }
    public String big(int length) {
        char[] c = new char[length];
        for (int i = 0; i < length; i++) c[i] = (char) ('a' + i % 26);
        return new String(c);
    }
    public byte[] bigBytes(int length) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) b[i] = (byte) i;
        return b;
    }
    public int length(String v) { return v == null ? -1 : v.length(); }
    public String slow(int millis) {
        try { Thread.sleep(millis); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
        return "slept " + millis;
    }
    public String whoami() { return identity; }

    private static String arrayString(Object v) {
        if (v instanceof int[]) return Arrays.toString((int[]) v);
        if (v instanceof long[]) return Arrays.toString((long[]) v);
        if (v instanceof byte[]) return Arrays.toString((byte[]) v);
        if (v instanceof double[]) return Arrays.toString((double[]) v);
        if (v instanceof Object[]) return Arrays.deepToString((Object[]) v);
        return String.valueOf(v);
    }

    /** Fails loudly when an element arrived as another class than the generic type says. */
    private static void check(java.util.Collection<?> c, Class<?> want) {
        if (c == null) return;
        for (Object o : c) {
            if (o != null && !want.isInstance(o)) {
                throw new IllegalArgumentException("element " + o + " is " + o.getClass().getName()
                    + ", expected " + want.getName());
            }
        }
    }
}
