import com.caucho.hessian.io.AbstractHessianOutput;
import com.caucho.hessian.io.AbstractSerializer;
import com.caucho.hessian.io.AbstractStringValueDeserializer;
import com.caucho.hessian.io.BigDecimalDeserializer;
import com.caucho.hessian.io.Deserializer;
import com.caucho.hessian.io.Hessian2Input;
import com.caucho.hessian.io.Hessian2Output;
import com.caucho.hessian.io.HessianProtocolException;
import com.caucho.hessian.io.Serializer;
import com.caucho.hessian.io.SerializerFactory;
import com.caucho.hessian.io.StringValueSerializer;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Modifier;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.Date;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;

/**
 * Line-protocol harness around Caucho Hessian 4.0.38 (see docs/typed-json.md).
 *
 * <p>Commands on stdin, one per line; one JSON line per command on stdout:
 * {@code decode HEX}, {@code encode TJSON}, {@code ping}.
 *
 * <p>decode: {@code Hessian2Input.readObject()} builds the Java value; the harness then writes that
 * value again with Caucho's own {@code Hessian2Output} and turns those bytes into TJSON, so every
 * type string, class name, field list and shared reference is exactly what Caucho writes for the
 * object graph Java produced. Object fields are then put back into the order of the class
 * definition that was read from the input (wire order); fields Java has but the input lacked
 * follow in Caucho's serializer order.
 *
 * <p>encode: TJSON is turned into real Java values (int[] for "[int", HashSet for
 * "java.util.HashSet", com.tribridge.interop.User for that class, ...), which are written with
 * {@code Hessian2Output.writeObject}. Class / list / map type names that name no loadable,
 * instantiable Java class are written "raw" through Caucho's low-level writer API (writeObjectBegin
 * / writeListBegin / writeMapBegin) with exactly the given type, field names and values.
 */
public final class CauchoHarness {
    private static final HarnessSerializerFactory FACTORY = new HarnessSerializerFactory();
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private CauchoHarness() {
    }

    public static void main(String[] args) throws Exception {
        // Anything written to System.out by a library would corrupt the protocol: send it to stderr.
        final Writer out = new BufferedWriter(new OutputStreamWriter(
                new FileOutputStream(FileDescriptor.out), StandardCharsets.UTF_8));
        System.setOut(System.err);
        final BufferedReader in = new BufferedReader(
                new InputStreamReader(System.in, StandardCharsets.UTF_8));
        // Deeply nested values recurse; give the worker a large stack.
        Thread worker = new Thread(null, () -> serve(in, out), "caucho-harness", 1L << 30);
        worker.start();
        worker.join();
    }

    private static void serve(BufferedReader in, Writer out) {
        try {
            String line;
            while ((line = in.readLine()) != null) {
                String reply;
                try {
                    reply = "{\"ok\": " + handle(line) + "}";
                } catch (Throwable e) {
                    reply = "{\"error\": " + jsonString(describe(e)) + "}";
                    if (System.getenv("CAUCHO_HARNESS_DEBUG") != null) {
                        e.printStackTrace();
                    }
                }
                out.write(reply);
                out.write('\n');
                out.flush();
            }
        } catch (IOException e) {
            e.printStackTrace();
        }
    }

    static String describe(Throwable e) {
        while ((e instanceof InvocationTargetException || e instanceof ExceptionInInitializerError)
                && e.getCause() != null) {
            e = e.getCause();
        }
        String msg = e.getMessage();
        return e.getClass().getName() + (msg == null ? "" : ": " + msg);
    }

    static String handle(String rawLine) throws Exception {
        String line = rawLine.strip();
        if (line.isEmpty()) {
            throw new IllegalArgumentException("empty command");
        }
        int sp = line.indexOf(' ');
        String cmd = sp < 0 ? line : line.substring(0, sp);
        String arg = sp < 0 ? "" : line.substring(sp + 1).strip();
        switch (cmd) {
            case "ping":
                return jsonString("pong");
            case "decode":
                return decode(fromHex(arg));
            case "encode":
                return jsonString(toHex(encode(new Json(arg).parseDocument())));
            default:
                throw new IllegalArgumentException("unknown command: " + cmd);
        }
    }

    // ------------------------------------------------------------------------------------------
    // decode

    /** Hessian2Input that exposes the class definitions it read (for the wire field order). */
    static final class RecordingInput extends Hessian2Input {
        RecordingInput(InputStream is) {
            super(is);
        }

        Map<String, List<String>> wireFieldOrder() throws ReflectiveOperationException {
            Map<String, List<String>> order = new HashMap<>();
            if (_classDefs == null) {
                return order;
            }
            for (Object def : _classDefs) {
                Field typeField = def.getClass().getDeclaredField("_type");
                Field namesField = def.getClass().getDeclaredField("_fieldNames");
                typeField.setAccessible(true);
                namesField.setAccessible(true);
                String type = (String) typeField.get(def);
                String[] names = (String[]) namesField.get(def);
                if (type != null && names != null) {
                    order.putIfAbsent(type, List.of(names));
                }
            }
            return order;
        }
    }

    /** Remembers whether the reader ever hit the end of the data. */
    static final class EofTrackingStream extends ByteArrayInputStream {
        boolean eof;

        EofTrackingStream(byte[] data) {
            super(data);
        }

        @Override
        public synchronized int read() {
            int b = super.read();
            eof |= b < 0;
            return b;
        }

        @Override
        public synchronized int read(byte[] b, int off, int len) {
            int n = super.read(b, off, len);
            eof |= n < 0;
            return n;
        }
    }

    static String decode(byte[] data) throws Exception {
        EofTrackingStream stream = new EofTrackingStream(data);
        RecordingInput in = new RecordingInput(stream);
        in.setSerializerFactory(FACTORY);
        Object value = in.readObject();
        if (stream.eof) {
            // Caucho treats a read past the end as byte -1 and carries on: report truncation
            throw new IOException("truncated input: Caucho read past the end of the "
                    + data.length + " byte(s) (it would have produced "
                    + (value == null ? "null" : value.getClass().getName() + " " + value) + ")");
        }
        int trailing = 0;
        while (in.read() >= 0) {
            trailing++;
        }
        if (trailing > 0) {
            throw new IOException(trailing + " trailing byte(s) after the first value");
        }
        Map<String, List<String>> wireOrder = in.wireFieldOrder();
        byte[] again = write(value);
        Node root = new WireParser(again).parseAll();
        return new Emitter(wireOrder).emit(root);
    }

    static byte[] write(Object value) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        Hessian2Output out = new Hessian2Output(bos);
        out.setSerializerFactory(FACTORY);
        SynObjectSerializer.DEFS.clear();
        out.writeObject(value);
        out.flush();
        return bos.toByteArray();
    }

    /** One value of a parsed hessian stream; containers keep identity for shared references. */
    static final class Node {
        final String kind;
        Object scalar;
        String type;
        final List<Node> items = new ArrayList<>();
        final List<String> names = new ArrayList<>();
        Node target;

        Node(String kind) {
            this.kind = kind;
        }

        Node(String kind, Object scalar) {
            this.kind = kind;
            this.scalar = scalar;
        }

        boolean isContainer() {
            return kind.equals("list") || kind.equals("map") || kind.equals("object");
        }
    }

    /** A complete Hessian 2 value parser (used on Caucho's own output). */
    static final class WireParser {
        private final byte[] buf;
        private int pos;
        private final List<Node> refs = new ArrayList<>();
        private final List<String> types = new ArrayList<>();
        private final List<String[]> classDefs = new ArrayList<>();

        WireParser(byte[] buf) {
            this.buf = buf;
        }

        Node parseAll() throws IOException {
            Node n = read();
            if (pos != buf.length) {
                throw new IOException("re-encoded value has trailing bytes");
            }
            return n;
        }

        private int u8() throws IOException {
            if (pos >= buf.length) {
                throw new IOException("unexpected end of data at " + pos);
            }
            return buf[pos++] & 0xff;
        }

        private int peek() throws IOException {
            if (pos >= buf.length) {
                throw new IOException("unexpected end of data at " + pos);
            }
            return buf[pos] & 0xff;
        }

        private int u16() throws IOException {
            return (u8() << 8) | u8();
        }

        private int i32() throws IOException {
            return (u8() << 24) | (u8() << 16) | (u8() << 8) | u8();
        }

        private long i64() throws IOException {
            return ((long) i32() << 32) | (i32() & 0xffffffffL);
        }

        private byte[] bytes(int n) throws IOException {
            if (pos + n > buf.length) {
                throw new IOException("unexpected end of data at " + pos);
            }
            byte[] b = new byte[n];
            System.arraycopy(buf, pos, b, 0, n);
            pos += n;
            return b;
        }

        private void chars(StringBuilder sb, int n) throws IOException {
            int units = 0;
            while (units < n) {
                int b = u8();
                if (b < 0x80) {
                    sb.append((char) b);
                    units++;
                } else if ((b & 0xe0) == 0xc0) {
                    sb.append((char) (((b & 0x1f) << 6) | (u8() & 0x3f)));
                    units++;
                } else if ((b & 0xf0) == 0xe0) {
                    sb.append((char) (((b & 0x0f) << 12) | ((u8() & 0x3f) << 6) | (u8() & 0x3f)));
                    units++;
                } else if ((b & 0xf8) == 0xf0) {
                    int cp = ((b & 0x07) << 18) | ((u8() & 0x3f) << 12) | ((u8() & 0x3f) << 6)
                            | (u8() & 0x3f);
                    sb.appendCodePoint(cp);
                    units += 2;
                } else {
                    throw new IOException("bad utf-8 byte 0x" + Integer.toHexString(b));
                }
            }
        }

        private static boolean isStringTag(int t) {
            return t <= 0x1f || (t >= 0x30 && t <= 0x33) || t == 'R' || t == 'S';
        }

        private String readString(int tag) throws IOException {
            StringBuilder sb = new StringBuilder();
            while (true) {
                if (tag <= 0x1f) {
                    chars(sb, tag);
                    return sb.toString();
                } else if (tag >= 0x30 && tag <= 0x33) {
                    chars(sb, ((tag - 0x30) << 8) | u8());
                    return sb.toString();
                } else if (tag == 'S') {
                    chars(sb, u16());
                    return sb.toString();
                } else if (tag == 'R') {
                    chars(sb, u16());
                    tag = u8();
                    if (!isStringTag(tag)) {
                        throw new IOException("expected string chunk, got 0x" + Integer.toHexString(tag));
                    }
                } else {
                    throw new IOException("expected string, got 0x" + Integer.toHexString(tag));
                }
            }
        }

        private byte[] readBinary(int tag) throws IOException {
            ByteArrayOutputStream bos = new ByteArrayOutputStream();
            while (true) {
                if (tag >= 0x20 && tag <= 0x2f) {
                    bos.writeBytes(bytes(tag - 0x20));
                    return bos.toByteArray();
                } else if (tag >= 0x34 && tag <= 0x37) {
                    bos.writeBytes(bytes(((tag - 0x34) << 8) | u8()));
                    return bos.toByteArray();
                } else if (tag == 'B') {
                    bos.writeBytes(bytes(u16()));
                    return bos.toByteArray();
                } else if (tag == 'A') {
                    bos.writeBytes(bytes(u16()));
                    tag = u8();
                } else {
                    throw new IOException("expected binary chunk, got 0x" + Integer.toHexString(tag));
                }
            }
        }

        private int readInt() throws IOException {
            Node n = read();
            if (!n.kind.equals("int")) {
                throw new IOException("expected int, got " + n.kind);
            }
            return (Integer) n.scalar;
        }

        private String readType() throws IOException {
            int t = peek();
            if (isStringTag(t)) {
                String s = readString(u8());
                types.add(s);
                return s;
            }
            return types.get(readInt());
        }

        private Node list(String type, int len) throws IOException {
            Node n = new Node("list");
            n.type = type;
            refs.add(n);
            if (len >= 0) {
                for (int i = 0; i < len; i++) {
                    n.items.add(read());
                }
            } else {
                while (peek() != 'Z') {
                    n.items.add(read());
                }
                pos++;
            }
            return n;
        }

        private Node map(String type) throws IOException {
            Node n = new Node("map");
            n.type = type;
            refs.add(n);
            while (peek() != 'Z') {
                n.items.add(read());
                n.items.add(read());
            }
            pos++;
            return n;
        }

        private Node instance(int idx) throws IOException {
            String[] def = classDefs.get(idx);
            Node n = new Node("object");
            n.type = def[0];
            refs.add(n);
            for (int i = 1; i < def.length; i++) {
                n.names.add(def[i]);
                n.items.add(read());
            }
            return n;
        }

        Node read() throws IOException {
            int tag = u8();
            if (tag <= 0x1f || (tag >= 0x30 && tag <= 0x33) || tag == 'R' || tag == 'S') {
                return new Node("string", readString(tag));
            }
            if ((tag >= 0x20 && tag <= 0x2f) || (tag >= 0x34 && tag <= 0x37) || tag == 'A' || tag == 'B') {
                return new Node("binary", readBinary(tag));
            }
            if (tag >= 0x38 && tag <= 0x3f) {
                return new Node("long", ((long) (tag - 0x3c) << 16) + (u8() << 8) + u8());
            }
            if (tag >= 0x60 && tag <= 0x6f) {
                return instance(tag - 0x60);
            }
            if (tag >= 0x70 && tag <= 0x77) {
                return list(readType(), tag - 0x70);
            }
            if (tag >= 0x78 && tag <= 0x7f) {
                return list(null, tag - 0x78);
            }
            if (tag >= 0x80 && tag <= 0xbf) {
                return new Node("int", tag - 0x90);
            }
            if (tag >= 0xc0 && tag <= 0xcf) {
                return new Node("int", ((tag - 0xc8) << 8) + u8());
            }
            if (tag >= 0xd0 && tag <= 0xd7) {
                return new Node("int", ((tag - 0xd4) << 16) + (u8() << 8) + u8());
            }
            if (tag >= 0xd8 && tag <= 0xef) {
                return new Node("long", (long) (tag - 0xe0));
            }
            if (tag >= 0xf0) {
                return new Node("long", (long) (((tag - 0xf8) << 8) + u8()));
            }
            switch (tag) {
                case 'C': {
                    String name = readString(u8());
                    int count = readInt();
                    String[] def = new String[count + 1];
                    def[0] = name;
                    for (int i = 0; i < count; i++) {
                        def[i + 1] = readString(u8());
                    }
                    classDefs.add(def);
                    return read();
                }
                case 'D':
                    return new Node("double", Double.longBitsToDouble(i64()));
                case 'F':
                    return new Node("bool", Boolean.FALSE);
                case 'T':
                    return new Node("bool", Boolean.TRUE);
                case 'N':
                    return new Node("null");
                case 'H':
                    return map(null);
                case 'M':
                    return map(readType());
                case 'I':
                    return new Node("int", i32());
                case 0x4a:
                    return new Node("date", i64());
                case 0x4b:
                    return new Node("date", i32() * 60000L);
                case 'L':
                    return new Node("long", i64());
                case 'O':
                    return instance(readInt());
                case 'Q': {
                    Node r = new Node("ref");
                    r.target = refs.get(readInt());
                    return r;
                }
                case 'U':
                    return list(readType(), -1);
                case 'V': {
                    String type = readType();
                    return list(type, readInt());
                }
                case 'W':
                    return list(null, -1);
                case 'X':
                    return list(null, readInt());
                case 'Y':
                    return new Node("long", (long) i32());
                case 0x5b:
                    return new Node("double", 0.0);
                case 0x5c:
                    return new Node("double", 1.0);
                case 0x5d:
                    return new Node("double", (double) (byte) u8());
                case 0x5e:
                    return new Node("double", (double) (short) u16());
                case 0x5f:
                    return new Node("double", 0.001 * i32());
                default:
                    throw new IOException("unexpected tag 0x" + Integer.toHexString(tag) + " at " + (pos - 1));
            }
        }
    }

    /** Graph of Nodes -> canonical TJSON (labels only on shared containers, pre-order). */
    static final class Emitter {
        private final Map<String, List<String>> wireOrder;
        private final IdentityHashMap<Node, Integer> visits = new IdentityHashMap<>();
        private final IdentityHashMap<Node, Integer> labels = new IdentityHashMap<>();
        private final IdentityHashMap<Node, Boolean> emitted = new IdentityHashMap<>();
        private int nextLabel;

        Emitter(Map<String, List<String>> wireOrder) {
            this.wireOrder = wireOrder;
        }

        String emit(Node root) {
            count(root);
            StringBuilder sb = new StringBuilder();
            write(root, sb);
            return sb.toString();
        }

        private static Node deref(Node n) {
            return n.kind.equals("ref") ? n.target : n;
        }

        /** Child order used for both passes: object fields follow the wire class definition. */
        private int[] order(Node n) {
            int size = n.kind.equals("object") ? n.names.size() : n.items.size();
            int[] idx = new int[size];
            List<String> wire = n.kind.equals("object") ? wireOrder.get(n.type) : null;
            if (wire == null) {
                for (int i = 0; i < size; i++) {
                    idx[i] = i;
                }
                return idx;
            }
            int k = 0;
            boolean[] used = new boolean[size];
            for (String name : wire) {
                int i = n.names.indexOf(name);
                if (i >= 0 && !used[i]) {
                    used[i] = true;
                    idx[k++] = i;
                }
            }
            for (int i = 0; i < size; i++) {
                if (!used[i]) {
                    idx[k++] = i;
                }
            }
            return idx;
        }

        private void count(Node n) {
            n = deref(n);
            if (!n.isContainer()) {
                return;
            }
            int c = visits.merge(n, 1, Integer::sum);
            if (c > 1) {
                return;
            }
            for (int i : order(n)) {
                count(n.items.get(i));
            }
        }

        private void write(Node n, StringBuilder sb) {
            n = deref(n);
            switch (n.kind) {
                case "null":
                    sb.append("[\"null\"]");
                    return;
                case "bool":
                    sb.append("[\"bool\", ").append(n.scalar).append(']');
                    return;
                case "int":
                    sb.append("[\"int\", ").append(n.scalar).append(']');
                    return;
                case "long":
                    sb.append("[\"long\", \"").append(n.scalar).append("\"]");
                    return;
                case "double": {
                    double d = (Double) n.scalar;
                    sb.append("[\"double\", ");
                    if (Double.isNaN(d)) {
                        sb.append("\"NaN\"");
                    } else if (Double.isInfinite(d)) {
                        sb.append(d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
                    } else {
                        sb.append(Double.toString(d));
                    }
                    sb.append(']');
                    return;
                }
                case "string":
                    sb.append("[\"string\", ").append(jsonString((String) n.scalar)).append(']');
                    return;
                case "binary":
                    sb.append("[\"binary\", \"")
                            .append(Base64.getEncoder().encodeToString((byte[]) n.scalar)).append("\"]");
                    return;
                case "date":
                    sb.append("[\"date\", ").append(n.scalar).append(']');
                    return;
                default:
                    break;
            }
            if (emitted.containsKey(n)) {
                sb.append("[\"ref\", ").append(labels.get(n)).append(']');
                return;
            }
            emitted.put(n, Boolean.TRUE);
            Integer label = null;
            if (visits.getOrDefault(n, 1) > 1) {
                label = nextLabel++;
                labels.put(n, label);
            }
            sb.append("[\"").append(n.kind).append("\", ");
            sb.append(n.type == null ? "null" : jsonString(n.type)).append(", [");
            if (n.kind.equals("map")) {
                for (int i = 0; i + 1 < n.items.size(); i += 2) {
                    if (i > 0) {
                        sb.append(", ");
                    }
                    sb.append('[');
                    write(n.items.get(i), sb);
                    sb.append(", ");
                    write(n.items.get(i + 1), sb);
                    sb.append(']');
                }
            } else {
                int[] idx = order(n);
                for (int k = 0; k < idx.length; k++) {
                    if (k > 0) {
                        sb.append(", ");
                    }
                    int i = idx[k];
                    if (n.kind.equals("list")) {
                        write(n.items.get(i), sb);
                    } else {
                        sb.append('[').append(jsonString(n.names.get(i))).append(", ");
                        write(n.items.get(i), sb);
                        sb.append(']');
                    }
                }
            }
            sb.append(']');
            if (label != null) {
                sb.append(", ").append(label);
            }
            sb.append(']');
        }
    }

    // ------------------------------------------------------------------------------------------
    // encode

    static byte[] encode(Object tjson) throws Exception {
        Object value = new Builder().build(tjson);
        return write(value);
    }

    /** An object whose class is not available: written raw with its given name and fields. */
    static final class SynObject {
        final String type;
        final List<String> names = new ArrayList<>();
        final List<Object> values = new ArrayList<>();

        SynObject(String type) {
            this.type = type;
        }
    }

    /** A list whose hessian type names no instantiable Java class. */
    static final class SynList {
        final String type;
        final List<Object> items = new ArrayList<>();

        SynList(String type) {
            this.type = type;
        }
    }

    /** A map whose hessian type names no instantiable Java class. */
    static final class SynMap {
        final String type;
        final List<Object> keys = new ArrayList<>();
        final List<Object> values = new ArrayList<>();

        SynMap(String type) {
            this.type = type;
        }
    }

    static final class SynObjectSerializer extends AbstractSerializer {
        /** Field lists of the raw class definitions written by the current (single) output. */
        static final Map<String, List<String>> DEFS = new HashMap<>();

        @Override
        public void writeObject(Object obj, AbstractHessianOutput out) throws IOException {
            if (out.addRef(obj)) {
                return;
            }
            SynObject o = (SynObject) obj;
            List<String> known = DEFS.putIfAbsent(o.type, o.names);
            if (known != null && !known.equals(o.names)) {
                throw new IOException("class " + o.type + " used with two different field lists "
                        + known + " and " + o.names + " in one stream");
            }
            int ref = out.writeObjectBegin(o.type);
            if (ref == -1) {
                out.writeClassFieldLength(o.names.size());
                for (String name : o.names) {
                    out.writeString(name);
                }
                out.writeObjectBegin(o.type);
            } else if (ref < -1) {
                throw new IOException("hessian 1 style object output is not supported");
            }
            for (Object v : o.values) {
                out.writeObject(v);
            }
        }
    }

    static final class SynListSerializer extends AbstractSerializer {
        @Override
        public void writeObject(Object obj, AbstractHessianOutput out) throws IOException {
            if (out.addRef(obj)) {
                return;
            }
            SynList l = (SynList) obj;
            boolean hasEnd = out.writeListBegin(l.items.size(), l.type);
            for (Object v : l.items) {
                out.writeObject(v);
            }
            if (hasEnd) {
                out.writeListEnd();
            }
        }
    }

    static final class SynMapSerializer extends AbstractSerializer {
        @Override
        public void writeObject(Object obj, AbstractHessianOutput out) throws IOException {
            if (out.addRef(obj)) {
                return;
            }
            SynMap m = (SynMap) obj;
            out.writeMapBegin(m.type);
            for (int i = 0; i < m.keys.size(); i++) {
                out.writeObject(m.keys.get(i));
                out.writeObject(m.values.get(i));
            }
            out.writeMapEnd();
        }
    }

    /** Caucho's factory, plus serializers for the raw (synthetic) values above. */
    static final class HarnessSerializerFactory extends SerializerFactory {
        private static final Serializer SYN_OBJECT = new SynObjectSerializer();
        private static final Serializer SYN_LIST = new SynListSerializer();
        private static final Serializer SYN_MAP = new SynMapSerializer();

        private static Serializer synthetic(Class<?> cl) {
            if (cl == SynObject.class) {
                return SYN_OBJECT;
            } else if (cl == SynList.class) {
                return SYN_LIST;
            } else if (cl == SynMap.class) {
                return SYN_MAP;
            }
            return null;
        }

        @Override
        public Serializer getObjectSerializer(Class<?> cl) throws HessianProtocolException {
            Serializer s = synthetic(cl);
            return s != null ? s : super.getObjectSerializer(cl);
        }

        /*
         * String-valued classes. Upstream Caucho registers BigDecimal in its
         * META-INF/hessian/serializers and deserializers, which Debian's hessian.jar lacks
         * (without them Caucho reads a BigDecimal as an empty bean); dubbo-hessian-lite, the
         * reader tribridge talks to, registers UUID the same way. Both read {value: String}.
         */
        private static final Deserializer BIG_DECIMAL = new BigDecimalDeserializer();
        private static final Deserializer UUID_VALUE = new AbstractStringValueDeserializer() {
            @Override
            public Class<?> getType() {
                return UUID.class;
            }

            @Override
            protected Object create(String value) {
                return UUID.fromString(value);
            }
        };

        @Override
        @SuppressWarnings("rawtypes")
        public Deserializer getDeserializer(Class cl) throws HessianProtocolException {
            if (cl == BigDecimal.class) {
                return BIG_DECIMAL;
            }
            if (cl == UUID.class) {
                return UUID_VALUE;
            }
            return super.getDeserializer(cl);
        }

        @Override
        @SuppressWarnings("rawtypes")
        public Serializer getSerializer(Class cl) throws HessianProtocolException {
            if (cl == BigDecimal.class || cl == UUID.class) {
                return StringValueSerializer.SER;
            }
            Serializer s = synthetic(cl);
            return s != null ? s : super.getSerializer(cl);
        }
    }

    /** TJSON -> Java values. */
    static final class Builder {
        private final Map<Long, Object> labels = new HashMap<>();

        private static List<?> asList(Object o, String what) {
            if (!(o instanceof List)) {
                throw new IllegalArgumentException(what + " must be a JSON array, got " + Json.describe(o));
            }
            return (List<?>) o;
        }

        private static void arity(List<?> node, int min, int max) {
            if (node.size() < min || node.size() > max) {
                throw new IllegalArgumentException("wrong number of elements in " + Json.write(node));
            }
        }

        private void label(List<?> node, int index, Object value) {
            if (node.size() > index) {
                Object l = node.get(index);
                if (!(l instanceof Long)) {
                    throw new IllegalArgumentException("label must be an integer: " + Json.write(l));
                }
                if (labels.put((Long) l, value) != null) {
                    throw new IllegalArgumentException("label " + l + " defined twice");
                }
            }
        }

        Object build(Object json) throws Exception {
            List<?> node = asList(json, "TJSON value");
            if (node.isEmpty() || !(node.get(0) instanceof String)) {
                throw new IllegalArgumentException("TJSON value must start with a tag: " + Json.write(node));
            }
            String tag = (String) node.get(0);
            switch (tag) {
                case "null":
                    arity(node, 1, 1);
                    return null;
                case "bool":
                    arity(node, 2, 2);
                    if (!(node.get(1) instanceof Boolean)) {
                        throw new IllegalArgumentException("bool needs true/false");
                    }
                    return node.get(1);
                case "int": {
                    arity(node, 2, 2);
                    long v = integral(node.get(1));
                    if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
                        throw new IllegalArgumentException("int out of range: " + v);
                    }
                    return (int) v;
                }
                case "long":
                    arity(node, 2, 2);
                    return integral(node.get(1));
                case "double":
                    arity(node, 2, 2);
                    return toDouble(node.get(1));
                case "string":
                    arity(node, 2, 2);
                    if (!(node.get(1) instanceof String)) {
                        throw new IllegalArgumentException("string needs a JSON string");
                    }
                    return node.get(1);
                case "binary":
                    arity(node, 2, 2);
                    return Base64.getDecoder().decode((String) node.get(1));
                case "date":
                    arity(node, 2, 2);
                    return new Date(integral(node.get(1)));
                case "ref": {
                    arity(node, 2, 2);
                    long l = integral(node.get(1));
                    if (!labels.containsKey(l)) {
                        throw new IllegalArgumentException("ref to unknown label " + l);
                    }
                    return labels.get(l);
                }
                case "list":
                    arity(node, 3, 4);
                    return buildList(node);
                case "map":
                    arity(node, 3, 4);
                    return buildMap(node);
                case "object":
                    arity(node, 3, 4);
                    return buildObject(node);
                default:
                    throw new IllegalArgumentException("unknown TJSON tag: " + tag);
            }
        }

        private static long integral(Object v) {
            if (v instanceof Long) {
                return (Long) v;
            }
            if (v instanceof String) {
                return Long.parseLong((String) v);
            }
            if (v instanceof Double && ((Double) v) == Math.rint((Double) v)
                    && Math.abs((Double) v) < 9.007199254740992E15) {
                return ((Double) v).longValue();
            }
            throw new IllegalArgumentException("expected an integer, got " + Json.write(v));
        }

        private static double toDouble(Object v) {
            if (v instanceof Number) {
                return ((Number) v).doubleValue();
            }
            if ("NaN".equals(v)) {
                return Double.NaN;
            } else if ("Infinity".equals(v)) {
                return Double.POSITIVE_INFINITY;
            } else if ("-Infinity".equals(v)) {
                return Double.NEGATIVE_INFINITY;
            }
            throw new IllegalArgumentException("expected a number, got " + Json.write(v));
        }

        private Object buildList(List<?> node) throws Exception {
            Object typeObj = node.get(1);
            List<?> items = asList(node.get(2), "list items");
            if (typeObj == null) {
                ArrayList<Object> list = new ArrayList<>(items.size());
                label(node, 3, list);
                for (Object item : items) {
                    list.add(build(item));
                }
                return list;
            }
            String type = (String) typeObj;
            if (type.startsWith("[")) {
                Class<?> comp = arrayComponent(type.substring(1));
                if (comp != null) {
                    Object arr = Array.newInstance(comp, items.size());
                    label(node, 3, arr);
                    for (int i = 0; i < items.size(); i++) {
                        Array.set(arr, i, coerce(build(items.get(i)), comp, "element of " + type));
                    }
                    return arr;
                }
            } else {
                Class<?> cl = loadClass(type);
                if (cl != null && Collection.class.isAssignableFrom(cl) && instantiable(cl)) {
                    @SuppressWarnings("unchecked")
                    Collection<Object> coll = (Collection<Object>) newInstance(cl);
                    label(node, 3, coll);
                    for (Object item : items) {
                        coll.add(build(item));
                    }
                    return coll;
                }
            }
            SynList syn = new SynList(type);
            label(node, 3, syn);
            for (Object item : items) {
                syn.items.add(build(item));
            }
            return syn;
        }

        private Object buildMap(List<?> node) throws Exception {
            Object typeObj = node.get(1);
            List<?> entries = asList(node.get(2), "map entries");
            Map<Object, Object> map = null;
            SynMap syn = null;
            if (typeObj == null) {
                map = new HashMap<>();
            } else {
                Class<?> cl = loadClass((String) typeObj);
                if (cl != null && Map.class.isAssignableFrom(cl) && instantiable(cl)) {
                    @SuppressWarnings("unchecked")
                    Map<Object, Object> m = (Map<Object, Object>) newInstance(cl);
                    map = m;
                } else {
                    syn = new SynMap((String) typeObj);
                }
            }
            label(node, 3, map != null ? map : syn);
            for (Object e : entries) {
                List<?> pair = asList(e, "map entry");
                if (pair.size() != 2) {
                    throw new IllegalArgumentException("map entry must be [key, value]: " + Json.write(pair));
                }
                Object k = build(pair.get(0));
                Object v = build(pair.get(1));
                if (map != null) {
                    map.put(k, v);
                } else {
                    syn.keys.add(k);
                    syn.values.add(v);
                }
            }
            return map != null ? map : syn;
        }

        @SuppressWarnings({"unchecked", "rawtypes"})
        private Object buildObject(List<?> node) throws Exception {
            String className = (String) node.get(1);
            List<?> fields = asList(node.get(2), "object fields");
            for (Object f : fields) {
                List<?> pair = asList(f, "object field");
                if (pair.size() != 2 || !(pair.get(0) instanceof String)) {
                    throw new IllegalArgumentException("field must be [name, value]: " + Json.write(pair));
                }
            }
            Class<?> cl = loadClass(className);
            if (cl == null) {
                SynObject syn = new SynObject(className);
                label(node, 3, syn);
                for (Object f : fields) {
                    List<?> pair = (List<?>) f;
                    syn.names.add((String) pair.get(0));
                    syn.values.add(build(pair.get(1)));
                }
                return syn;
            }
            if (cl.isEnum()) {
                Object name = null;
                for (Object f : fields) {
                    List<?> pair = (List<?>) f;
                    if (pair.get(0).equals("name")) {
                        name = build(pair.get(1));
                    }
                }
                if (!(name instanceof String)) {
                    throw new IllegalArgumentException("enum " + className + " needs a string field 'name'");
                }
                Object e = Enum.valueOf((Class<? extends Enum>) cl, (String) name);
                label(node, 3, e);
                return e;
            }
            if ((cl == BigDecimal.class || cl == BigInteger.class) && fields.size() == 1
                    && ((List<?>) fields.get(0)).get(0).equals("value")) {
                // the hessian-lite / upstream-Caucho form {value: "1.5"}
                Object s = build(((List<?>) fields.get(0)).get(1));
                Object n = cl == BigDecimal.class ? new BigDecimal((String) s) : new BigInteger((String) s);
                label(node, 3, n);
                return n;
            }
            Object obj = newInstance(cl);
            if (obj instanceof Throwable) {
                // not the harness's own construction stack: only what the TJSON says
                ((Throwable) obj).setStackTrace(new StackTraceElement[0]);
            }
            label(node, 3, obj);
            for (Object f : fields) {
                List<?> pair = (List<?>) f;
                String name = (String) pair.get(0);
                Field field = findField(cl, name);
                if (field == null) {
                    throw new IllegalArgumentException("class " + className + " has no field " + name);
                }
                Object v = build(pair.get(1));
                if (v == null && field.getType().isPrimitive()) {
                    throw new IllegalArgumentException("null for primitive field " + className + "." + name);
                }
                field.setAccessible(true);
                field.set(obj, coerce(v, field.getType(), className + "." + name));
            }
            return obj;
        }
    }

    static Class<?> loadClass(String name) {
        try {
            return Class.forName(name, false, CauchoHarness.class.getClassLoader());
        } catch (ClassNotFoundException | LinkageError e) {
            return null;
        }
    }

    /** Java component class of a hessian array type (without its leading '['), or null. */
    static Class<?> arrayComponent(String t) {
        switch (t) {
            case "boolean":
                return boolean.class;
            case "byte":
                return byte.class;
            case "short":
                return short.class;
            case "int":
                return int.class;
            case "long":
                return long.class;
            case "float":
                return float.class;
            case "double":
                return double.class;
            case "char":
                return char.class;
            case "string":
                return String.class;
            case "object":
                return Object.class;
            case "date":
                return Date.class;
            default:
                break;
        }
        if (t.startsWith("[")) {
            Class<?> inner = arrayComponent(t.substring(1));
            return inner == null ? null : Array.newInstance(inner, 0).getClass();
        }
        return loadClass(t);
    }

    static boolean instantiable(Class<?> cl) {
        if (cl.isInterface() || Modifier.isAbstract(cl.getModifiers())) {
            return false;
        }
        try {
            cl.getDeclaredConstructor();
            return true;
        } catch (NoSuchMethodException e) {
            return false;
        }
    }

    static Object newInstance(Class<?> cl) throws Exception {
        try {
            Constructor<?> c = cl.getDeclaredConstructor();
            c.setAccessible(true);
            return c.newInstance();
        } catch (NoSuchMethodException e) {
            // like Caucho's UnsafeDeserializer: allocate without running a constructor
            Field f = Class.forName("sun.misc.Unsafe").getDeclaredField("theUnsafe");
            f.setAccessible(true);
            Object unsafe = f.get(null);
            return unsafe.getClass().getMethod("allocateInstance", Class.class).invoke(unsafe, cl);
        }
    }

    static Field findField(Class<?> cl, String name) {
        for (Class<?> c = cl; c != null; c = c.getSuperclass()) {
            try {
                Field f = c.getDeclaredField(name);
                if (!Modifier.isStatic(f.getModifiers())) {
                    return f;
                }
            } catch (NoSuchFieldException e) {
                // try the superclass
            }
        }
        return null;
    }

    static Class<?> boxed(Class<?> c) {
        if (!c.isPrimitive()) {
            return c;
        }
        if (c == int.class) {
            return Integer.class;
        } else if (c == long.class) {
            return Long.class;
        } else if (c == double.class) {
            return Double.class;
        } else if (c == float.class) {
            return Float.class;
        } else if (c == short.class) {
            return Short.class;
        } else if (c == byte.class) {
            return Byte.class;
        } else if (c == boolean.class) {
            return Boolean.class;
        } else if (c == char.class) {
            return Character.class;
        }
        return Void.class;
    }

    /** Converts a built value to the Java type of a field or array element, without loss. */
    static Object coerce(Object v, Class<?> target, String where) throws Exception {
        if (v == null) {
            if (target.isPrimitive()) {
                throw new IllegalArgumentException("null for primitive " + where);
            }
            return null;
        }
        Class<?> box = boxed(target);
        if (box.isInstance(v)) {
            return v;
        }
        if (v instanceof Number && Number.class.isAssignableFrom(box)) {
            Number n = (Number) v;
            boolean integral = v instanceof Integer || v instanceof Long;
            long l = n.longValue();
            if (box == Integer.class && integral && l == (int) l) {
                return (int) l;
            } else if (box == Long.class && integral) {
                return l;
            } else if (box == Short.class && integral && l == (short) l) {
                return (short) l;
            } else if (box == Byte.class && integral && l == (byte) l) {
                return (byte) l;
            } else if (box == Double.class) {
                return n.doubleValue();
            } else if (box == Float.class) {
                return n.floatValue();
            } else if (box == Integer.class && n.doubleValue() == (int) n.doubleValue()) {
                return (int) n.doubleValue();
            } else if (box == Long.class && n.doubleValue() == (long) n.doubleValue()) {
                return (long) n.doubleValue();
            }
        }
        if (box == Character.class && v instanceof String && ((String) v).length() == 1) {
            return ((String) v).charAt(0);
        }
        if (box == Date.class && (v instanceof Long || v instanceof Integer)) {
            return new Date(((Number) v).longValue());
        }
        boolean seq = v instanceof Collection || (v.getClass().isArray() && !(v instanceof byte[]));
        if (seq) {
            List<Object> elems = new ArrayList<>();
            if (v instanceof Collection) {
                elems.addAll((Collection<?>) v);
            } else {
                for (int i = 0; i < Array.getLength(v); i++) {
                    elems.add(Array.get(v, i));
                }
            }
            if (target.isArray()) {
                Class<?> comp = target.getComponentType();
                Object arr = Array.newInstance(comp, elems.size());
                for (int i = 0; i < elems.size(); i++) {
                    Array.set(arr, i, coerce(elems.get(i), comp, "element of " + where));
                }
                return arr;
            }
            if (Collection.class.isAssignableFrom(target)) {
                Collection<Object> coll;
                if (instantiable(target)) {
                    @SuppressWarnings("unchecked")
                    Collection<Object> c = (Collection<Object>) newInstance(target);
                    coll = c;
                } else if (target.isAssignableFrom(ArrayList.class)) {
                    coll = new ArrayList<>();
                } else if (target.isAssignableFrom(TreeSet.class) && SortedSet.class.isAssignableFrom(target)) {
                    coll = new TreeSet<>();
                } else if (target.isAssignableFrom(LinkedHashSet.class)) {
                    coll = new HashSet<>();
                } else {
                    throw new IllegalArgumentException("cannot build a " + target.getName() + " for " + where);
                }
                coll.addAll(elems);
                return coll;
            }
        }
        if (v instanceof Map && Map.class.isAssignableFrom(target)) {
            Map<Object, Object> m;
            if (instantiable(target)) {
                @SuppressWarnings("unchecked")
                Map<Object, Object> mm = (Map<Object, Object>) newInstance(target);
                m = mm;
            } else if (target.isAssignableFrom(HashMap.class)) {
                m = new HashMap<>();
            } else if (target.isAssignableFrom(TreeMap.class) && SortedMap.class.isAssignableFrom(target)) {
                m = new TreeMap<>();
            } else if (target.isAssignableFrom(LinkedHashMap.class)) {
                m = new LinkedHashMap<>();
            } else {
                throw new IllegalArgumentException("cannot build a " + target.getName() + " for " + where);
            }
            m.putAll((Map<?, ?>) v);
            return m;
        }
        throw new IllegalArgumentException("cannot use a " + v.getClass().getName() + " as "
                + target.getName() + " for " + where);
    }

    // ------------------------------------------------------------------------------------------
    // hex and JSON

    static byte[] fromHex(String s) {
        String h = s.replaceAll("\\s+", "");
        if (h.length() % 2 != 0) {
            throw new IllegalArgumentException("odd number of hex digits");
        }
        byte[] b = new byte[h.length() / 2];
        for (int i = 0; i < b.length; i++) {
            int hi = Character.digit(h.charAt(2 * i), 16);
            int lo = Character.digit(h.charAt(2 * i + 1), 16);
            if (hi < 0 || lo < 0) {
                throw new IllegalArgumentException("bad hex digit near offset " + (2 * i));
            }
            b[i] = (byte) ((hi << 4) | lo);
        }
        return b;
    }

    static String toHex(byte[] b) {
        char[] c = new char[b.length * 2];
        for (int i = 0; i < b.length; i++) {
            c[2 * i] = HEX[(b[i] >> 4) & 0xf];
            c[2 * i + 1] = HEX[b[i] & 0xf];
        }
        return new String(c);
    }

    /** JSON string literal; everything outside printable ASCII is \\u-escaped (lone surrogates too). */
    static String jsonString(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2);
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            if (ch == '"' || ch == '\\') {
                sb.append('\\').append(ch);
            } else if (ch >= 0x20 && ch < 0x7f) {
                sb.append(ch);
            } else {
                sb.append(String.format("\\u%04x", (int) ch));
            }
        }
        return sb.append('"').toString();
    }

    /** Minimal JSON reader: arrays -> List, objects -> LinkedHashMap, integers -> Long. */
    static final class Json {
        private final String s;
        private int i;

        Json(String s) {
            this.s = s;
        }

        Object parseDocument() {
            Object v = value();
            ws();
            if (i != s.length()) {
                throw error("trailing characters");
            }
            return v;
        }

        private IllegalArgumentException error(String msg) {
            return new IllegalArgumentException("bad JSON at offset " + i + ": " + msg);
        }

        private void ws() {
            while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) {
                i++;
            }
        }

        private Object value() {
            ws();
            if (i >= s.length()) {
                throw error("unexpected end");
            }
            char c = s.charAt(i);
            if (c == '[') {
                i++;
                List<Object> list = new ArrayList<>();
                ws();
                if (i < s.length() && s.charAt(i) == ']') {
                    i++;
                    return list;
                }
                while (true) {
                    list.add(value());
                    ws();
                    if (i < s.length() && s.charAt(i) == ',') {
                        i++;
                    } else if (i < s.length() && s.charAt(i) == ']') {
                        i++;
                        return list;
                    } else {
                        throw error("expected , or ]");
                    }
                }
            }
            if (c == '{') {
                i++;
                Map<String, Object> map = new LinkedHashMap<>();
                ws();
                if (i < s.length() && s.charAt(i) == '}') {
                    i++;
                    return map;
                }
                while (true) {
                    ws();
                    String k = string();
                    ws();
                    if (i >= s.length() || s.charAt(i) != ':') {
                        throw error("expected :");
                    }
                    i++;
                    map.put(k, value());
                    ws();
                    if (i < s.length() && s.charAt(i) == ',') {
                        i++;
                    } else if (i < s.length() && s.charAt(i) == '}') {
                        i++;
                        return map;
                    } else {
                        throw error("expected , or }");
                    }
                }
            }
            if (c == '"') {
                return string();
            }
            if (s.startsWith("true", i)) {
                i += 4;
                return Boolean.TRUE;
            }
            if (s.startsWith("false", i)) {
                i += 5;
                return Boolean.FALSE;
            }
            if (s.startsWith("null", i)) {
                i += 4;
                return null;
            }
            if (s.startsWith("NaN", i)) {
                i += 3;
                return Double.NaN;
            }
            if (s.startsWith("Infinity", i)) {
                i += 8;
                return Double.POSITIVE_INFINITY;
            }
            if (s.startsWith("-Infinity", i)) {
                i += 9;
                return Double.NEGATIVE_INFINITY;
            }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
                i++;
            }
            String num = s.substring(start, i);
            if (num.isEmpty()) {
                throw error("unexpected character '" + c + "'");
            }
            try {
                if (num.indexOf('.') < 0 && num.indexOf('e') < 0 && num.indexOf('E') < 0) {
                    try {
                        return Long.parseLong(num);
                    } catch (NumberFormatException e) {
                        return Double.parseDouble(num);
                    }
                }
                return Double.parseDouble(num);
            } catch (NumberFormatException e) {
                throw error("bad number " + num);
            }
        }

        private String string() {
            if (i >= s.length() || s.charAt(i) != '"') {
                throw error("expected string");
            }
            i++;
            StringBuilder sb = new StringBuilder();
            while (true) {
                if (i >= s.length()) {
                    throw error("unterminated string");
                }
                char c = s.charAt(i++);
                if (c == '"') {
                    return sb.toString();
                }
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                if (i >= s.length()) {
                    throw error("unterminated escape");
                }
                char e = s.charAt(i++);
                switch (e) {
                    case '"':
                    case '\\':
                    case '/':
                        sb.append(e);
                        break;
                    case 'b':
                        sb.append('\b');
                        break;
                    case 'f':
                        sb.append('\f');
                        break;
                    case 'n':
                        sb.append('\n');
                        break;
                    case 'r':
                        sb.append('\r');
                        break;
                    case 't':
                        sb.append('\t');
                        break;
                    case 'u':
                        if (i + 4 > s.length()) {
                            throw error("bad \\u escape");
                        }
                        sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                        break;
                    default:
                        throw error("bad escape \\" + e);
                }
            }
        }

        static String describe(Object o) {
            return o == null ? "null" : o.getClass().getSimpleName();
        }

        static String write(Object o) {
            if (o == null) {
                return "null";
            } else if (o instanceof String) {
                return jsonString((String) o);
            } else if (o instanceof List) {
                StringBuilder sb = new StringBuilder("[");
                for (Object x : (List<?>) o) {
                    if (sb.length() > 1) {
                        sb.append(", ");
                    }
                    sb.append(write(x));
                }
                return sb.append(']').toString();
            } else if (o instanceof Map) {
                StringBuilder sb = new StringBuilder("{");
                for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                    if (sb.length() > 1) {
                        sb.append(", ");
                    }
                    sb.append(jsonString(String.valueOf(e.getKey()))).append(": ").append(write(e.getValue()));
                }
                return sb.append('}').toString();
            }
            return String.valueOf(o);
        }
    }
}
