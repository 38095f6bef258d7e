"""Release tooling (docs/releasing.md)."""
