package com.tribridge.compat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.util.Arrays;
import java.util.Date;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import org.apache.dubbo.common.Version;
import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.ReferenceConfig;

/**
 * A real Java Dubbo consumer for the doors where tribridge is the server (Dubbo2 ingress, relay).
 *
 * <p>Reads commands on stdin, one per line: {@code run URL [check,...]} where URL is a direct
 * {@code dubbo://host:port}. It runs the checks (all when none are named) with typed Java values,
 * compares in Java, and prints one JSON line {@code {"check": "ok" | "failure text", ...}}.
 * Prints {@code READY} first. References are built once per (URL, interface, group, version).
 */
public final class Consumer {
    private static final Map<String, Object> REFS = new ConcurrentHashMap<>();
    private static final ApplicationConfig APP = new ApplicationConfig("compat-consumer");

    private Consumer() {}

    public static void main(String[] args) throws Exception {
        System.out.println("READY consumer dubbo " + Version.getVersion());
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] w = line.trim().split("\\s+");
            if (w.length >= 2 && w[0].equals("run")) {
                List<String> only = w.length > 2 ? Arrays.asList(w[2].split(",")) : null;
                System.out.println(run(w[1], only));
            } else {
                System.out.println("{\"error\": \"unknown command\"}");
            }
            System.out.flush();
        }
        System.exit(0);
    }

    @SuppressWarnings("unchecked")
    static <T> T ref(String url, Class<T> iface, String group, String version) {
        String key = url + "|" + iface.getName() + "|" + group + "|" + version;
        return (T) REFS.computeIfAbsent(key, k -> {
            ReferenceConfig<T> rc = new ReferenceConfig<>();
            rc.setApplication(APP);
            rc.setInterface(iface);
            rc.setUrl(url);
            rc.setVersion(version);
            if (!group.isEmpty()) rc.setGroup(group);
            rc.setTimeout(15000);
            rc.setRetries(0);
            rc.setCheck(false);
            return rc.get();
        });
    }

    static Person person() {
        Person p = new Person();
        p.setName("Ann");
        p.setAge(36);
        p.setScore(null);
        p.setId(1L << 40);
        p.setActive(true);
        p.setHeight(1.75);
        p.setColor(Color.BLUE);
        p.setBalance(new BigDecimal("1234.50"));
        p.setBig(new BigInteger("123456789012345678901234567890"));
        p.setBorn(new Date(1700000000123L));
        p.setDay(LocalDate.of(2024, 2, 29));
        p.setTags(Arrays.asList("a", "b"));
        Map<String, Integer> counts = new LinkedHashMap<>();
        counts.put("x", 1);
        p.setCounts(counts);
        p.setAddress(new Address("Oslo", "0150"));
        return p;
    }

    static String run(String url, List<String> only) {
        final TypesService t = ref(url, TypesService.class, "", "1.0.0");
        Map<String, Callable<Object>> checks = new LinkedHashMap<>();
        checks.put("int", () -> same(42, t.echoInt(42)));
        checks.put("long", () -> same((1L << 40) + 3, t.echoLong((1L << 40) + 3)));
        checks.put("boxed_null", () -> same(null, t.echoInteger(null)));
        checks.put("double", () -> same(1.5, t.echoDouble(1.5)));
        checks.put("float", () -> same(0.1f, t.echoFloat(0.1f)));
        checks.put("short_byte_char", () -> same("7 -3 x", t.echoShort((short) 7) + " " + t.echoByte((byte) -3) + " " + t.echoChar('x')));
        checks.put("string", () -> same("h\u00e9llo \ud83d\ude00", t.echoString("h\u00e9llo \ud83d\ude00")));
        checks.put("bigdecimal", () -> same(new BigDecimal("12.50"), t.echoBigDecimal(new BigDecimal("12.50"))));
        checks.put("biginteger", () -> same(new BigInteger("123456789012345678901234567890"),
            t.echoBigInteger(new BigInteger("123456789012345678901234567890"))));
        checks.put("date", () -> same(new Date(1700000000123L), t.echoDate(new Date(1700000000123L))));
        checks.put("localdate", () -> same(LocalDate.of(2024, 2, 29), t.echoLocalDate(LocalDate.of(2024, 2, 29))));
        checks.put("enum", () -> same(Color.GREEN, t.echoColor(Color.GREEN)));
        checks.put("enum_list", () -> same(Arrays.asList(Color.RED, Color.BLUE), t.echoColors(Arrays.asList(Color.RED, Color.BLUE))));
        checks.put("bytes", () -> same("[0, 1, -1, 127]", Arrays.toString(t.echoBytes(new byte[] {0, 1, -1, 127}))));
        checks.put("int_array", () -> same("[1, 2, 3]", Arrays.toString(t.echoInts(new int[] {1, 2, 3}))));
        checks.put("pojo", () -> same(person().toString(), String.valueOf(t.echoPerson(person()))));
        checks.put("subclass_arg", () -> {
            Employee e = new Employee();
            e.setName("Eve");
            return same("com.tribridge.compat.Employee:Eve", t.describe(e));
        });
        checks.put("subclass_return", () -> {
            Person p = t.makeEmployee("Max");
            return same("com.tribridge.compat.Employee ACME", p.getClass().getName() + " " + ((Employee) p).getCompany());
        });
        checks.put("long_keys", () -> {
            Map<Long, String> m = new HashMap<>();
            m.put(1L << 35, "x");
            Map<Long, String> back = t.echoLongKeys(m);
            return same("java.lang.Long", back.keySet().iterator().next().getClass().getName());
        });
        checks.put("decimal_list", () -> same(Arrays.asList(new BigDecimal("0.1"), new BigDecimal("2.50")),
            t.echoDecimals(Arrays.asList(new BigDecimal("0.1"), new BigDecimal("2.50")))));
        checks.put("set", () -> same(new HashSet<>(Arrays.asList(1, 2)), t.echoSet(new HashSet<>(Arrays.asList(1, 2)))));
        checks.put("overloads", () -> same("3 1000000000003 ab", t.sum(1, 2) + " " + t.sum(1L, 2L) + " " + t.sum("a", "b")));
        checks.put("void", () -> {
            t.touch("touched-" + url);
            return same("touched-" + url, t.touched());
        });
        checks.put("null_return", () -> same(null, t.nullPerson()));
        checks.put("checked_exception", () -> {
            try {
                return "no exception: " + t.fail("checked");
            } catch (CompatException e) {
                return same("checked failure 42 detail-42", e.getMessage() + " " + e.getCode() + " " + e.getDetail());
            }
        });
        checks.put("unchecked_exception", () -> {
            try {
                return "no exception: " + t.fail("unchecked");
            } catch (CompatRuntimeException e) {
                return same("unchecked failure reason-x", e.getMessage() + " " + e.getReason());
            }
        });
        checks.put("async", () -> same("async hello, Bo", t.greetAsync("Bo").get(15, TimeUnit.SECONDS)));
        checks.put("attachments", () -> {
            Ctx.sendAttachment("tb-key", "v1");
            String got = t.attachment("tb-key");
            if (Version.getVersion().startsWith("2.")) return same("v1", got);  // 2.7: request side only
            return same("v1 reply-v1", got + " " + Ctx.replyReceived("tb-reply"));
        });
        checks.put("one_megabyte", () -> {
            String big = t.big(1 << 20);
            return same((1 << 20) + " " + (1 << 20), big.length() + " " + t.length(big));
        });
        checks.put("groups_versions", () -> {
            String a = ref(url, GreetService.class, "g1", "1.0.0").greet("x");
            String b = ref(url, GreetService.class, "g2", "1.0.0").greet("x");
            String c = ref(url, GreetService.class, "g1", "2.0.0").greet("x");
            return same("hello x from g1/1.0.0|hello x from g2/1.0.0|hello x from g1/2.0.0", a + "|" + b + "|" + c);
        });
        StringBuilder out = new StringBuilder("{");
        for (Map.Entry<String, Callable<Object>> c : checks.entrySet()) {
            if (only != null && !only.contains(c.getKey())) continue;
            String result;
            try {
                Object r = c.getValue().call();
                result = r == null ? "ok" : String.valueOf(r);
            } catch (Throwable e) {
                result = e.getClass().getName() + ": " + e.getMessage();
            }
            if (out.length() > 1) out.append(", ");
            out.append(quote(c.getKey())).append(": ").append(quote(result));
        }
        return out.append("}").toString();
    }

    /** null when equal, else a description of the difference. */
    static Object same(Object want, Object got) {
        if (want == null ? got == null : want.equals(got)) return null;
        return "expected " + want + " (" + (want == null ? "null" : want.getClass().getName()) + "), got "
            + got + " (" + (got == null ? "null" : got.getClass().getName()) + ")";
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char ch : (s.length() > 2000 ? s.substring(0, 2000) : s).toCharArray()) {
            if (ch == '"' || ch == '\\') b.append('\\').append(ch);
            else if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
            else b.append(ch);
        }
        return b.append('"').toString();
    }

}
