package com.tribridge.compat;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.apache.dubbo.common.stream.StreamObserver;
import org.apache.dubbo.remoting.http12.h2.Http2CancelableStreamObserver;
import org.apache.dubbo.rpc.CancellationContext;

/** Emits on a thread of its own, as a real producer does, and records what it saw. */
public class StreamServiceImpl implements StreamService {
    private static final class Seen {
        volatile int sent;
        volatile boolean cancelled;
        volatile boolean finished;
    }

    private final Map<String, Seen> seen = new ConcurrentHashMap<>();
    private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "stream-emitter");
        t.setDaemon(true);
        return t;
    });

    private Seen track(String id) {
        if (seen.size() > 10000) seen.clear();
        return seen.computeIfAbsent(id, k -> new Seen());
    }

    private static CancellationContext cancellation(StreamObserver<?> out) {
        return out instanceof Http2CancelableStreamObserver
            ? ((Http2CancelableStreamObserver<?>) out).getCancellationContext() : null;
    }

    @Override
    public void count(String spec, StreamObserver<String> out) {
        String[] p = spec.trim().split("\\s+");
        String id = p[0];
        int count = Integer.parseInt(p[1]);
        int delay = p.length > 2 ? Integer.parseInt(p[2]) : 0;
        int failAt = p.length > 3 ? Integer.parseInt(p[3]) : -1;
        Seen s = track(id);
        CancellationContext cc = cancellation(out);
        if (cc != null) cc.addListener(ctx -> s.cancelled = true);
        pool.execute(() -> {
            try {
                for (int n = 0; n < count; n++) {
                    if (s.cancelled || (cc != null && cc.isCancelled())) {
                        s.cancelled = true;
                        return;
                    }
                    if (n == failAt) {
                        out.onError(new IllegalStateException("failed at " + n));
                        return;
                    }
                    out.onNext(id + ":" + n);
                    s.sent++;
                    if (delay > 0) Thread.sleep(delay);
                }
                s.finished = true;
                out.onCompleted();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (RuntimeException e) {
                s.cancelled = true; // onNext on a stream the client reset
            }
        });
    }

    @Override
    public void boxes(String spec, StreamObserver<Box<Integer>> out) {
        String[] p = spec.trim().split("\\s+");
        int n = Integer.parseInt(p[1]);
        for (int i = 0; i < n; i++) {
            Box<Integer> b = new Box<>();
            b.setLabel(p[0] + ":" + i);
            b.setValue(i);
            out.onNext(b);
        }
        out.onCompleted();
    }

    @Override
    public StreamObserver<String> echo(StreamObserver<String> out) {
        return new StreamObserver<String>() {
            @Override public void onNext(String data) { out.onNext("echo:" + data); }
            @Override public void onError(Throwable t) { out.onError(t); }
            @Override public void onCompleted() { out.onCompleted(); }
        };
    }

    @Override
    public StreamObserver<Integer> sum(StreamObserver<Integer> out) {
        return new StreamObserver<Integer>() {
            private int total;
            @Override public void onNext(Integer data) { total += data; }
            @Override public void onError(Throwable t) { out.onError(t); }
            @Override public void onCompleted() {
                out.onNext(total);
                out.onCompleted();
            }
        };
    }

    @Override
    public String inspect(String id) {
        Seen s = seen.get(id);
        if (s == null) return "sent=0 cancelled=false finished=false";
        return "sent=" + s.sent + " cancelled=" + s.cancelled + " finished=" + s.finished;
    }
}
