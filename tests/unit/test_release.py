"""The release workflow, the chart and the package agree: one image name, one chart, one version source."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

import gallery_operator
from gallery_operator.cli import kubectl_gallery
from gallery_operator.config import Settings
from scripts import release_version
from tests import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "release.yml"
CHART = REPO_ROOT / "charts" / "gallery-operator"


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def steps() -> list[dict[str, Any]]:
    return list(workflow()["jobs"]["release"]["steps"])


def test_the_workflow_pushes_the_image_the_chart_pulls() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    env = workflow()["env"]
    assert env["IMAGE"] == values["image"]["repository"]
    assert env["IMAGE"].startswith(env["REGISTRY"] + "/")
    # The image tag is the chart's appVersion: the chart leaves image.tag empty, the workflow tags the version.
    assert values["image"]["tag"] == ""
    build = next(s for s in steps() if s.get("id") == "build")
    assert build["with"]["tags"] == "${{ env.IMAGE }}:${{ steps.version.outputs.version }}"
    assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["with"]["push"] is True
    assert build["with"]["sbom"] is True and build["with"]["provenance"] == "mode=max"


def test_the_workflow_publishes_this_chart() -> None:
    env = workflow()["env"]
    assert REPO_ROOT / env["CHART"] == CHART
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    publish = next(s for s in steps() if "helm push" in s.get("run", ""))
    # The pushed package is named after Chart.yaml's name and the one version.
    assert '"dist/${name}-${VERSION}.tgz"' in publish["run"]
    assert publish["env"]["VERSION"] == "${{ steps.version.outputs.version }}"
    assert chart["name"] == "gallery-operator"
    assert "cosign sign --yes" in publish["run"]


def test_the_workflow_takes_its_version_from_pyproject() -> None:
    version_step = next(s for s in steps() if s.get("id") == "version")
    assert 'scripts/release_version.py check --tag "${GITHUB_REF_NAME}"' in version_step["run"]
    assert "$(python3 scripts/release_version.py show)" in version_step["run"]
    triggers = yaml.safe_load(WORKFLOW.read_text().replace("\non:", '\n"on":'))["on"]  # YAML 1.1 reads on as true
    assert triggers == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+*"]}}
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == pyproject["project"]["version"]
    assert release_version.problems(REPO_ROOT, f"v{pyproject['project']['version']}") == []


def test_the_workflow_uses_the_helm_the_tests_build() -> None:
    go_mod = (REPO_ROOT / "tests" / "cluster" / "go" / "helm" / "go.mod").read_text()
    pinned = re.search(r"helm\.sh/helm/v3 (v[0-9.]+)", go_mod)
    assert pinned is not None
    assert workflow()["env"]["HELM_VERSION"] == pinned.group(1)


def test_the_keyless_signature_needs_the_oidc_token() -> None:
    permissions = workflow()["jobs"]["release"]["permissions"]
    assert permissions["id-token"] == "write"
    assert permissions["packages"] == "write"
    assert workflow()["permissions"] == {"contents": "read"}
    signed = [s["run"] for s in steps() if "cosign sign --yes" in s.get("run", "")]
    assert len(signed) == 2  # the image and the chart
    assert signed[0] == 'cosign sign --yes "${IMAGE}@${DIGEST}"'
    assert 'cosign sign --yes "${CHART_REPOSITORY}/${name}@${digest}"' in signed[1]


def test_the_operator_and_the_plugin_default_to_the_released_image() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    released = f"{values['image']['repository']}:{chart['appVersion']}"
    assert released == gallery_operator.IMAGE
    assert Settings().worker_image == released
    assert kubectl_gallery.parser().parse_args(["catalogue", "x"]).image == released


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "charts").mkdir()
    shutil.copytree(CHART, tmp_path / "charts" / "gallery-operator")
    (tmp_path / "operator" / "gallery_operator").mkdir(parents=True)
    shutil.copy(REPO_ROOT / release_version.PACKAGE, tmp_path / release_version.PACKAGE)
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_a_chart_behind_the_package_version_is_refused_and_stamped(checkout: Path) -> None:
    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "1.2.3"', 1))
    wrong = release_version.problems(checkout, "v1.2.3")
    assert len(wrong) == 3 and all("1.2.3" in line for line in wrong), wrong
    assert release_version.main(["check", "--root", str(checkout)]) == 1
    assert release_version.main(["stamp", "--root", str(checkout)]) == 0
    chart = yaml.safe_load((checkout / "charts" / "gallery-operator" / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"], chart["kubeVersion"]) == ("1.2.3", "1.2.3", ">=1.29.0-0")
    assert '__version__ = "1.2.3"\n' in (checkout / release_version.PACKAGE).read_text()
    assert release_version.problems(checkout, "v1.2.3") == []
    assert release_version.problems(checkout, "v1.2.4") != []


def test_a_version_that_is_not_semver_is_refused(checkout: Path) -> None:
    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "latest"', 1))
    with pytest.raises(SystemExit, match=r"project\.version 'latest'"):
        release_version.problems(checkout, None)
