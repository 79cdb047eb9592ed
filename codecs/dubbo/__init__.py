"""tribridge.codecs.dubbo"""
