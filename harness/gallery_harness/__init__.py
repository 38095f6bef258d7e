"""gallery-operator's harness: a real local Kubernetes control plane (no container engine needed), the fixture
media site, the S3 server, the local operator process and the demo. Tests, benchmarks and the Makefile import it;
docs/local-cluster.md describes the cluster, docs/architecture.md the harness and the test tiers."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout: every test, harness part and benchmark finds the project's files from here."""
