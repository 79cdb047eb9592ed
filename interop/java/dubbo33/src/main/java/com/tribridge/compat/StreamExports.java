package com.tribridge.compat;

import java.util.List;

import org.apache.dubbo.config.ProtocolConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;

/**
 * Dubbo 3.3 only: exports {@link StreamService} when a plain tri protocol is configured
 * (streams need Triple). Provider finds this class by name, so the 2.7 module, which shares
 * Provider's source, builds without it.
 */
public final class StreamExports {
    private StreamExports() {}

    public static void export(DubboBootstrap boot, List<ProtocolConfig> protocols) {
        for (ProtocolConfig p : protocols) {
            if ("tri".equals(p.getName())) {
                boot.service(Provider.service(StreamService.class, new StreamServiceImpl(), "",
                    "1.0.0", protocols));
                return;
            }
        }
    }
}
