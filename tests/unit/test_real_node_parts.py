"""The pure parts of the real node's harness: the volume a claim gets, and what keys the project image."""

from __future__ import annotations

from pathlib import Path

from gallery_harness.image import digest, tree_bytes
from gallery_harness.volumes import volume_for


def test_a_claim_gets_a_pre_bound_host_path_volume_in_the_agents_layout() -> None:
    claim = {
        "metadata": {"namespace": "team", "name": "media", "uid": "1234"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "5Gi"}},
            "storageClassName": "fast",
        },
    }
    volume = volume_for(claim, Path("/state/node/claims"))
    assert volume["metadata"]["name"] == "pvc-1234"
    spec = volume["spec"]
    assert spec["hostPath"] == {"path": "/state/node/claims/team/media", "type": "DirectoryOrCreate"}
    assert spec["claimRef"] == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": "team",
        "name": "media",
        "uid": "1234",
    }
    assert (spec["capacity"], spec["accessModes"], spec["storageClassName"]) == (
        {"storage": "5Gi"},
        ["ReadWriteOnce"],
        "fast",
    )
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"


def test_a_claim_without_a_class_binds_to_a_volume_without_one() -> None:
    claim = {"metadata": {"namespace": "n", "name": "c", "uid": "u"}, "spec": {}}
    spec = volume_for(claim, Path("/r"))["spec"]
    assert (spec["storageClassName"], spec["accessModes"], spec["capacity"]) == (
        "",
        ["ReadWriteOnce"],
        {"storage": "1Gi"},
    )


def test_the_image_key_follows_code_and_recipe_but_not_bytecode(tmp_path: Path) -> None:
    package = tmp_path / "operator" / "pkg"
    package.mkdir(parents=True)
    (tmp_path / "Dockerfile").write_text("FROM base\n")
    (package / "a.py").write_text("x = 1\n")

    def key() -> str:
        return digest(*tree_bytes(tmp_path, ("Dockerfile", "operator")))

    first = key()
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.cpython-313.pyc").write_bytes(b"\0")
    assert key() == first
    (package / "a.py").write_text("x = 2\n")
    changed = key()
    assert changed != first
    (package / "a.py").rename(package / "b.py")  # same content, another name
    assert key() != changed
    (tmp_path / "Dockerfile").write_text("FROM other\n")
    assert key() not in {first, changed}
