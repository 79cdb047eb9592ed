"""tribridge.registries"""
