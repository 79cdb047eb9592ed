package com.tribridge.compat;

import org.apache.dubbo.rpc.RpcContext;

/** Attachments through Dubbo 2.7's RpcContext API. */
final class Ctx {
    private Ctx() {}

    static String requestAttachment(String key) {
        return RpcContext.getContext().getAttachment(key);
    }

    static void replyAttachment(String key, String value) {
        RpcContext.getServerContext().setAttachment(key, value);
    }

    static void sendAttachment(String key, String value) {
        RpcContext.getContext().setAttachment(key, value);
    }

    static String replyReceived(String key) {
        return RpcContext.getServerContext().getAttachment(key);
    }
}
