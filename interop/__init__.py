"""tribridge.interop"""
