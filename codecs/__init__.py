"""tribridge.codecs"""
