package com.tribridge.compat;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

/** One method per row of the JSON <-> Java table, and the service features users rely on. */
public interface TypesService {
    int echoInt(int v);
    Integer echoInteger(Integer v);
    long echoLong(long v);
    Long echoLongBoxed(Long v);
    short echoShort(short v);
    Short echoShortBoxed(Short v);
    byte echoByte(byte v);
    Byte echoByteBoxed(Byte v);
    double echoDouble(double v);
    Double echoDoubleBoxed(Double v);
    float echoFloat(float v);
    Float echoFloatBoxed(Float v);
    boolean echoBool(boolean v);
    Boolean echoBoolBoxed(Boolean v);
    char echoChar(char v);
    Character echoCharBoxed(Character v);
    String echoString(String v);
    BigDecimal echoBigDecimal(BigDecimal v);
    BigInteger echoBigInteger(BigInteger v);
    Date echoDate(Date v);
    LocalDate echoLocalDate(LocalDate v);
    LocalTime echoLocalTime(LocalTime v);
    LocalDateTime echoLocalDateTime(LocalDateTime v);
    Instant echoInstant(Instant v);
    Color echoColor(Color v);
    List<Color> echoColors(List<Color> v);
    byte[] echoBytes(byte[] v);
    int[] echoInts(int[] v);
    long[] echoLongs(long[] v);
    double[] echoDoubles(double[] v);
    String[] echoStrings(String[] v);
    Person[] echoPersons(Person[] v);
    List<String> echoList(List<String> v);
    Set<Integer> echoSet(Set<Integer> v);
    Map<String, List<Integer>> echoMapOfLists(Map<String, List<Integer>> v);
    Map<Long, String> echoLongKeys(Map<Long, String> v);
    Map<Color, Integer> echoEnumKeys(Map<Color, Integer> v);
    List<Map<String, Person>> echoNested(List<Map<String, Person>> v);
    List<BigDecimal> echoDecimals(List<BigDecimal> v);
    Map<String, BigInteger> echoBigIntegers(Map<String, BigInteger> v);
    Person echoPerson(Person v);
    Money echoMoney(Money v);
    Page echoPage(Page v);
    Box<Person> echoBox(Box<Person> v);
    Object echoObject(Object v);

    /** The Java class and value the provider received (what a codec really sent). */
    String typeOf(Object v);
    /** Class name and toString of a POJO in a superclass slot. */
    String describe(Person p);
    /** A subclass returned where the signature says superclass. */
    Person makeEmployee(String name);
    int sum(int a, int b);
    long sum(long a, long b);
    String sum(String a, String b);
    void touch(String v);
    /** Value of the last touch (void calls have an effect). */
    String touched();
    String nullString();
    Person nullPerson();
    List<String> nullList();
    String fail(String kind) throws CompatException;
    CompletableFuture<String> greetAsync(String name);
    /** Reads a request attachment and sets a response attachment "tb-reply". */
    String attachment(String key);
    String big(int length);
    byte[] bigBytes(int length);
    int length(String v);
    String slow(int millis);
    /** Identifies the exporting process ("dubbo 3.3.6 ..."). */
    String whoami();
}
