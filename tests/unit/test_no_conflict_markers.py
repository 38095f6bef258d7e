"""No merge conflict is left in the repository's text: a conflict marker at the start of a line in a tracked file
(a doc, a module, a manifest) means a merge kept both sides unresolved (docs/architecture.md carried one for a
whole session)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(rb"^(<{7} |>{7} |={7}$)", re.MULTILINE)
TEXT = (".md", ".py", ".yaml", ".yml", ".toml", ".json", ".txt", ".sh", ".tpl", ".lua", ".cfg", "Makefile")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in names.splitlines() if name.endswith(TEXT)]


def test_no_tracked_file_holds_a_conflict_marker() -> None:
    files = tracked_text_files()
    assert len(files) > 100  # the listing worked
    marked = [str(path.relative_to(ROOT)) for path in files if path.is_file() and MARKER.search(path.read_bytes())]
    assert marked == []
