"""Fast tests of the pure core: no I/O, no cluster."""
