"""Tests for gallery-operator."""
