"""Tests for gallery-operator."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The checkout: every test, harness and benchmark finds the project's files from here."""
