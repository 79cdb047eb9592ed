package com.tribridge.interop.eureka.client;

import com.netflix.appinfo.ApplicationInfoManager;
import com.netflix.appinfo.InstanceInfo;
import com.netflix.discovery.EurekaClient;
import com.netflix.discovery.shared.Application;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import org.springframework.boot.CommandLineRunner;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.cloud.netflix.eureka.serviceregistry.EurekaRegistration;
import org.springframework.cloud.netflix.eureka.serviceregistry.EurekaServiceRegistry;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;

/**
 * A Spring Cloud Netflix Eureka client, the way a Spring Cloud service registers itself: the
 * instance (port, ip, metadata such as {@code dubbo.interfaces}) comes from
 * {@code eureka.instance.*} properties on the command line.  There is no web server: the
 * instance advertises another process's port (tribridge's demo provider).
 *
 * <p>Driven line by line on stdin so one JVM serves a whole test session:
 * {@code STATUS <UP|DOWN|STARTING>} changes the status the instance reports about itself (the
 * client re-registers; Eureka only honours a self-reported DOWN or STARTING over a live lease),
 * {@code OVERRIDE <OUT_OF_SERVICE|UP|CANCEL_OVERRIDE>} sets or cancels a status override the
 * way Spring Cloud's service-registry endpoint does ({@code EurekaServiceRegistry.setStatus},
 * i.e. {@code PUT apps/APP/ID/status}), {@code APPS <NAME>} prints what this client's own registry fetch sees,
 * {@code CANCEL} shuts the Eureka client down (it unregisters), {@code EXIT} stops the JVM.
 * Each command answers one line starting with {@code OK} or {@code ERR}.
 */
@SpringBootApplication
public class EurekaClientApp {

    public static void main(String[] args) {
        SpringApplication app = new SpringApplication(EurekaClientApp.class);
        app.setWebApplicationType(WebApplicationType.NONE);
        app.run(args);
    }

    @Bean
    CommandLineRunner commands(
            ConfigurableApplicationContext ctx,
            ApplicationInfoManager infoManager,
            EurekaClient client,
            EurekaServiceRegistry registry,
            EurekaRegistration registration) {
        return args -> {
            InstanceInfo me = infoManager.getInfo();
            System.out.println("READY " + me.getAppName() + " " + me.getInstanceId());
            System.out.flush();
            BufferedReader in =
                    new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                String[] parts = line.trim().split("\\s+");
                try {
                    switch (parts[0].toUpperCase()) {
                        case "STATUS" -> {
                            infoManager.setInstanceStatus(
                                    InstanceInfo.InstanceStatus.valueOf(parts[1].toUpperCase()));
                            System.out.println("OK " + infoManager.getInfo().getStatus());
                        }
                        case "OVERRIDE" -> {
                            registry.setStatus(registration, parts[1].toUpperCase());
                            System.out.println("OK " + parts[1].toUpperCase());
                        }
                        case "APPS" -> {
                            Application a = client.getApplication(parts[1].toUpperCase());
                            StringBuilder sb = new StringBuilder("OK");
                            if (a != null) {
                                for (InstanceInfo i : a.getInstances()) {
                                    sb.append(' ').append(i.getInstanceId()).append('=')
                                            .append(i.getStatus());
                                }
                            }
                            System.out.println(sb);
                        }
                        case "CANCEL" -> {
                            client.shutdown();
                            System.out.println("OK cancelled");
                        }
                        case "EXIT" -> {
                            System.out.println("OK bye");
                            System.out.flush();
                            System.exit(SpringApplication.exit(ctx));
                        }
                        default -> System.out.println("ERR unknown command " + parts[0]);
                    }
                } catch (RuntimeException e) {
                    System.out.println("ERR " + e);
                }
                System.out.flush();
            }
            System.exit(SpringApplication.exit(ctx));
        };
    }
}
