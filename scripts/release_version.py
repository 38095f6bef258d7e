"""The release's one version: pyproject.toml's ``project.version``; the chart's version and appVersion follow it.

    python scripts/release_version.py show            print the version
    python scripts/release_version.py check [--tag T] exit 1 unless the chart (and the tag vX.Y.Z) agree with it
    python scripts/release_version.py stamp           write the version into Chart.yaml (version and appVersion)
                                                      and the package's __version__

The image tag is the chart's appVersion (values.yaml leaves image.tag empty), so the image, the chart and the
package carry the same version. docs/releasing.md says how a release is cut.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = Path("charts/gallery-operator/Chart.yaml")
PACKAGE = Path("operator/gallery_operator/__init__.py")
_PACKAGE_LINE = re.compile(r'^__version__ = "(?P<value>[^"]*)"$', re.MULTILINE)
# The two lines of Chart.yaml that carry the version, rewritten in place so comments and order stay.
_CHART_LINE = re.compile(r'^(?P<key>version|appVersion):\s*"?(?P<value>[^"\s]*)"?\s*$', re.MULTILINE)
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")


def package_version(root: Path) -> str:
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    if not isinstance(version, str) or not _SEMVER.match(version):
        raise SystemExit(f"pyproject.toml: project.version {version!r} is not a semantic version X.Y.Z[-pre]")
    return version


def chart_versions(root: Path) -> dict[str, str]:
    return {m["key"]: m["value"] for m in _CHART_LINE.finditer((root / CHART).read_text())}


def problems(root: Path, tag: str | None) -> list[str]:
    """What disagrees with the package version; empty when the release is consistent."""
    version = package_version(root)
    found = chart_versions(root)
    wrong = [
        f"{CHART}: {key} is {found.get(key)!r}, pyproject.toml's project.version is {version!r}"
        for key in ("version", "appVersion")
        if found.get(key) != version
    ]
    package = _PACKAGE_LINE.search((root / PACKAGE).read_text())
    if package is None or package["value"] != version:
        found_version = package["value"] if package else None
        wrong.append(f"{PACKAGE}: __version__ is {found_version!r}, pyproject.toml's project.version is {version!r}")
    if tag is not None and tag != f"v{version}":
        wrong.append(f"tag {tag!r} does not name pyproject.toml's project.version {version!r} (expected v{version})")
    return wrong


def stamp(root: Path) -> None:
    version = package_version(root)
    path = root / CHART
    text = _CHART_LINE.sub(
        lambda m: f'{m["key"]}: "{version}"' if m["key"] == "appVersion" else f"{m['key']}: {version}",
        path.read_text(),
    )
    path.write_text(text)
    package = root / PACKAGE
    package.write_text(_PACKAGE_LINE.sub(f'__version__ = "{version}"', package.read_text()))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["show", "check", "stamp"])
    parser.add_argument("--tag", help="the git tag being released (check only)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this script's)")
    args = parser.parse_args(argv)
    if args.command == "show":
        print(package_version(args.root))
        return 0
    if args.command == "stamp":
        stamp(args.root)
        return 0
    wrong = problems(args.root, args.tag)
    for line in wrong:
        print(line, file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
