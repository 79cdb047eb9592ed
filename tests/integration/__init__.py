"""Integration tests: the gateway end to end (in-process or as a child process) against our
demo provider, in-process servers and the registry emulators; no third-party peer is the
subject of a test here."""
