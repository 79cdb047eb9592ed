package com.tribridge.compat;

import org.apache.dubbo.rpc.RpcContext;

/** Attachments through Dubbo 3's RpcContext API (the 2.7 calls are deprecated here). */
final class Ctx {
    private Ctx() {}

    static String requestAttachment(String key) {
        return RpcContext.getServerAttachment().getAttachment(key);
    }

    static void replyAttachment(String key, String value) {
        RpcContext.getServerResponseContext().setAttachment(key, value);
    }

    static void sendAttachment(String key, String value) {
        RpcContext.getClientAttachment().setAttachment(key, value);
    }

    static String replyReceived(String key) {
        return RpcContext.getClientResponseContext().getAttachment(key);
    }
}
