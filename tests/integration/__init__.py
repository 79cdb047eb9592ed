"""Integration tests: the gateway end to end in-process or as a child process, against our demo provider, emulators and in-process servers."""
