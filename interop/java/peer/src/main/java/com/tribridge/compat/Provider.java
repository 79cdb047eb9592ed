package com.tribridge.compat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.dubbo.common.Version;
import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.ProtocolConfig;
import org.apache.dubbo.config.RegistryConfig;
import org.apache.dubbo.config.ServiceConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;

/**
 * Exports the test services the way users do with the plain Dubbo API.
 *
 * <p>Arguments are key=value: {@code app=NAME host=IP registry=zookeeper://H:P|N/A
 * protocols=dubbo:20880,tri:50051,dubbo+tri:20881}. {@code dubbo+tri} is Dubbo 3.3's one port
 * serving both protocols ({@code ext-protocol}). Anything else (register mode, metadata type)
 * comes from {@code -Ddubbo.*} system properties, as in production. Prints {@code READY} when
 * every service is exported.
 */
public final class Provider {
    private Provider() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> a = parse(args);
        String app = a.getOrDefault("app", "compat-provider");
        String host = a.get("host");
        String identity = "dubbo " + Version.getVersion() + " " + app;

        ApplicationConfig application = new ApplicationConfig(app);
        RegistryConfig registry = new RegistryConfig(a.getOrDefault("registry", "N/A"));
        List<ProtocolConfig> protocols = new ArrayList<>();
        for (String spec : a.getOrDefault("protocols", "dubbo:20880").split(",")) {
            String[] np = spec.split(":");
            String name = np[0];
            ProtocolConfig p = new ProtocolConfig();
            if (name.equals("dubbo+tri")) {
                p.setName("dubbo");
                p.setId("dubbo-unified");
                ProtocolConfig.class.getMethod("setExtProtocol", String.class).invoke(p, "tri,");
            } else {
                p.setName(name);
                p.setId(name);
            }
            p.setPort(Integer.parseInt(np[1]));
            if (host != null) p.setHost(host);
            p.setPayload(16 * 1024 * 1024);
            protocols.add(p);
        }

        DubboBootstrap boot = DubboBootstrap.getInstance()
            .application(application)
            .registry(registry)
            .protocols(protocols);
        boot.service(service(TypesService.class, new TypesServiceImpl(identity), "", "1.0.0", protocols));
        String[][] greets = {{"g1", "1.0.0"}, {"g2", "1.0.0"}, {"g1", "2.0.0"}};
        for (String[] gv : greets) {
            GreetService impl = new GreetServiceImpl(gv[0] + "/" + gv[1]);
            boot.service(service(GreetService.class, impl, gv[0], gv[1], protocols));
        }
        try { // Dubbo 3.3's streaming service (interop/java/dubbo33 only)
            Class.forName("com.tribridge.compat.StreamExports")
                .getMethod("export", DubboBootstrap.class, List.class)
                .invoke(null, boot, protocols);
        } catch (ClassNotFoundException e) {
            // a line without streaming (2.7)
        }
        boot.start();
        System.out.println("READY " + identity);
        System.out.flush();
        Object lock = new Object();
        synchronized (lock) {
            lock.wait();
        }
    }

    static <T> ServiceConfig<T> service(Class<T> iface, T impl, String group, String version,
                                                List<ProtocolConfig> protocols) {
        ServiceConfig<T> s = new ServiceConfig<>();
        s.setInterface(iface);
        s.setRef(impl);
        s.setVersion(version);
        if (!group.isEmpty()) s.setGroup(group);
        s.setProtocols(protocols);
        s.setTimeout(30000);
        return s;
    }

    static Map<String, String> parse(String[] args) {
        Map<String, String> out = new HashMap<>();
        for (String arg : args) {
            int i = arg.indexOf('=');
            if (i > 0) out.put(arg.substring(0, i), arg.substring(i + 1));
        }
        return out;
    }
}
