package com.tribridge.interop.nacos;

import com.alibaba.nacos.api.NacosFactory;
import com.alibaba.nacos.api.PropertyKeyConst;
import com.alibaba.nacos.api.naming.NamingService;
import com.alibaba.nacos.api.naming.listener.EventListener;
import com.alibaba.nacos.api.naming.listener.NamingEvent;
import com.alibaba.nacos.api.naming.pojo.Instance;
import com.alibaba.nacos.api.naming.pojo.ListView;
import com.alibaba.nacos.common.utils.JacksonUtils;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * The official Nacos Java client ({@code nacos-client}, the one Dubbo's Nacos registry uses),
 * unmodified, driven by one command per stdin line so that a test can check what a real
 * client sends to and sees from a Nacos server (here: tribridge's emulator).
 *
 * <pre>
 * REGISTER service group ip port [k=v&amp;k=v]   -> OK registered
 * PERSIST service group ip port               -> OK registered (ephemeral=false: over gRPC when
 *                                                the server announces the ability, else HTTP)
 * DEREGISTER service group ip port            -> OK deregistered
 * BATCH service group ip:port,ip:port         -> OK registered (batchRegisterInstance)
 * BATCHDEREG service group ip:port,...        -> OK deregistered (batchDeregisterInstance)
 * LIST service group                          -> OK [instances as JSON] (asks the server)
 * CACHED service group                        -> OK [instances as JSON] (getAllInstances with
 *                                                subscribe=true, as Dubbo's NacosRegistry calls it)
 * SUBSCRIBE service group                     -> OK subscribed; then EVENT {json} per change
 * UNSUBSCRIBE service group                   -> OK unsubscribed
 * SERVICES group                              -> OK {"count":n,"names":[...]}
 * STATUS                                      -> OK UP|DOWN
 * EXIT
 * </pre>
 * Errors answer {@code ERR <exception>}.  Arguments: the server address (host:port), then
 * optionally a namespace id.
 */
public final class NacosProbe {
    private static final Map<String, EventListener> LISTENERS = new HashMap<>();

    private NacosProbe() {}

    private static String json(Object o) {
        return JacksonUtils.toJson(o);
    }

    private static List<Map<String, Object>> view(List<Instance> instances) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (Instance i : instances) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("ip", i.getIp());
            m.put("port", i.getPort());
            m.put("healthy", i.isHealthy());
            m.put("enabled", i.isEnabled());
            m.put("ephemeral", i.isEphemeral());
            m.put("weight", i.getWeight());
            m.put("cluster", i.getClusterName());
            m.put("serviceName", i.getServiceName());
            m.put("metadata", i.getMetadata());
            out.add(m);
        }
        return out;
    }

    private static Map<String, String> metadata(String spec) {
        Map<String, String> m = new LinkedHashMap<>();
        if (spec == null || spec.isEmpty()) {
            return m;
        }
        for (String kv : spec.split("&")) {
            int eq = kv.indexOf('=');
            m.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        return m;
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty(PropertyKeyConst.SERVER_ADDR, args[0]);
        props.setProperty(PropertyKeyConst.NAMING_LOAD_CACHE_AT_START, "false");
        if (args.length > 1 && !args[1].isEmpty()) {
            props.setProperty(PropertyKeyConst.NAMESPACE, args[1]);
        }
        NamingService naming = NacosFactory.createNamingService(props);
        System.out.println("READY " + naming.getServerStatus());
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] p = line.trim().split(" ");
            try {
                switch (p[0]) {
                    case "REGISTER" -> {
                        Instance i = new Instance();
                        i.setIp(p[3]);
                        i.setPort(Integer.parseInt(p[4]));
                        i.setMetadata(metadata(p.length > 5 ? p[5] : ""));
                        naming.registerInstance(p[1], p[2], i);
                        System.out.println("OK registered");
                    }
                    case "PERSIST", "UNPERSIST" -> {
                        Instance i = new Instance();
                        i.setIp(p[3]);
                        i.setPort(Integer.parseInt(p[4]));
                        i.setEphemeral(false);
                        if (p[0].equals("PERSIST")) {
                            naming.registerInstance(p[1], p[2], i);
                            System.out.println("OK registered");
                        } else {
                            naming.deregisterInstance(p[1], p[2], i);
                            System.out.println("OK deregistered");
                        }
                    }
                    case "DEREGISTER" -> {
                        naming.deregisterInstance(p[1], p[2], p[3], Integer.parseInt(p[4]));
                        System.out.println("OK deregistered");
                    }
                    case "BATCH", "BATCHDEREG" -> {
                        List<Instance> list = new ArrayList<>();
                        for (String hp : p[3].split(",")) {
                            Instance i = new Instance();
                            i.setIp(hp.substring(0, hp.lastIndexOf(':')));
                            i.setPort(Integer.parseInt(hp.substring(hp.lastIndexOf(':') + 1)));
                            list.add(i);
                        }
                        if (p[0].equals("BATCH")) {
                            naming.batchRegisterInstance(p[1], p[2], list);
                            System.out.println("OK registered");
                        } else {
                            naming.batchDeregisterInstance(p[1], p[2], list);
                            System.out.println("OK deregistered");
                        }
                    }
                    case "CACHED" -> System.out.println(
                            "OK " + json(view(naming.getAllInstances(p[1], p[2]))));
                    case "LIST" -> System.out.println(
                            "OK " + json(view(naming.getAllInstances(p[1], p[2], false))));
                    case "SUBSCRIBE" -> {
                        String key = p[2] + "@@" + p[1];
                        EventListener l = event -> {
                            if (event instanceof NamingEvent e) {
                                Map<String, Object> m = new LinkedHashMap<>();
                                m.put("service", e.getServiceName());
                                m.put("group", e.getGroupName());
                                m.put("instances", view(e.getInstances()));
                                synchronized (System.out) {
                                    System.out.println("EVENT " + json(m));
                                    System.out.flush();
                                }
                            }
                        };
                        LISTENERS.put(key, l);
                        naming.subscribe(p[1], p[2], l);
                        System.out.println("OK subscribed");
                    }
                    case "UNSUBSCRIBE" -> {
                        EventListener l = LISTENERS.remove(p[2] + "@@" + p[1]);
                        naming.unsubscribe(p[1], p[2], l);
                        System.out.println("OK unsubscribed");
                    }
                    case "SERVICES" -> {
                        ListView<String> v = naming.getServicesOfServer(1, 100, p[1]);
                        Map<String, Object> m = new LinkedHashMap<>();
                        m.put("count", v.getCount());
                        m.put("names", v.getData());
                        System.out.println("OK " + json(m));
                    }
                    case "STATUS" -> System.out.println("OK " + naming.getServerStatus());
                    case "EXIT" -> {
                        System.out.println("OK bye");
                        System.out.flush();
                        naming.shutDown();
                        System.exit(0);
                    }
                    default -> System.out.println("ERR unknown command " + p[0]);
                }
            } catch (Exception e) {
                System.out.println("ERR " + e.toString().replace('\n', ' '));
            }
            System.out.flush();
        }
        naming.shutDown();
        System.exit(0);
    }
}
