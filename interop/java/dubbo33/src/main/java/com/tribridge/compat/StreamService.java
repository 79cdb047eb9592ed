package com.tribridge.compat;

import org.apache.dubbo.common.stream.StreamObserver;

/**
 * Dubbo 3.3 Triple streaming in Java-interface mode (StreamObserver), for tribridge's
 * streaming tests. Only the 3.3 module compiles it; Provider exports it through
 * {@link StreamExports} where a tri protocol is configured.
 */
public interface StreamService {
    /**
     * Server stream: {@code count} elements "ID:n", {@code delayMs} apart; at element
     * {@code failAt} (when >= 0) it ends with onError. The spec is "ID COUNT DELAYMS FAILAT".
     */
    void count(String spec, StreamObserver<String> out);

    /** Server stream of POJOs: N Boxes, label "ID:i", value i. The spec is "ID N". */
    void boxes(String spec, StreamObserver<Box<Integer>> out);

    /** Bidi: every element comes back as "echo:" + element, at once. */
    StreamObserver<String> echo(StreamObserver<String> out);

    /** Client stream: the sum of the elements, answered once the client completes. */
    StreamObserver<Integer> sum(StreamObserver<Integer> out);

    /** What the server saw of stream ID: "sent=N cancelled=B finished=B". */
    String inspect(String id);
}
