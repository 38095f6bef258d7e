"""Tests for gallery-operator (tiers: docs/architecture.md, "The harness and the test tiers")."""

from gallery_harness import REPO_ROOT

__all__ = ["REPO_ROOT"]
