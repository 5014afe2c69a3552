"""Jobs: the only layer that touches the file system in bulk and reads the clock (via the CLI)."""
