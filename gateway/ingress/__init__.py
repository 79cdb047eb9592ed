"""Doors other than HTTP: the Dubbo2 ingress and its Triple bridge."""
