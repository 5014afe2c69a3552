"""Models: pure graph builders and the thin classes that own their lifecycle."""
