"""HTTP/1.1 listener: the server, canonical paths, header rules."""
