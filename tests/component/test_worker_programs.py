"""The program wall and options that mean only what they say, tried as a hostile tenant would: hostile spellings
against the real Debian ffmpeg, hostile starts through every door Python has, hostile option values through the real
engines. Each case watches a listener on an address the egress guard refuses (127.0.0.2) and a marker file a started
program would create."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gallery_harness.site import Handler
from gallery_operator.api.spec import GalleryDlOptions, Options, YtDlpOptions, parse_spec
from gallery_operator.worker.programs import with_protocol_whitelist
from gallery_operator.workerconfig import PvcStorage
from tests.component.program_wall import ONLY_THE_SITE, Internal, inside_worker
from tests.component.workers import start_worker

FFMPEG = shutil.which("ffmpeg")


def hostile_ffmpeg(internal: str, scratch: Path) -> dict[str, list[str]]:
    """Spellings that made ffmpeg open the network by itself in the review, or might, by name."""
    local = f"file:{scratch}/in.ts"
    return {
        "subfile with its own whitelist": [
            *("ffmpeg", "-protocol_whitelist", "subfile,http,tcp"),
            *("-i", f"subfile,,start,0,end,0,,:{internal}/subfile", "-f", "null", "-"),
        ],
        "subfile": ["ffmpeg", "-i", f"subfile,,start,0,end,0,,:{internal}/subfile2", "-f", "null", "-"],
        "concat protocol": [
            *("ffmpeg", "-y", "-i", f"concat:{local}|{internal}/concat"),
            *("-c", "copy", "-f", "mpegts", f"file:{scratch}/o1.ts"),
        ],
        "tee output": [
            *("ffmpeg", "-y", "-i", local, "-map", "0", "-c", "copy"),
            *("-f", "tee", f"[f=mpegts]{internal}/tee"),
        ],
        "network output": ["ffmpeg", "-y", "-i", local, "-c", "copy", "-f", "mpegts", f"{internal}/out"],
        "network input": ["ffmpeg", "-y", "-i", f"{internal}/in", "-c", "copy", f"file:{scratch}/o2.ts"],
        "ffprobe on a URL": ["ffprobe", f"{internal}/probe"],
    }


def filter_spellings(internal: str, scratch: Path) -> dict[str, list[str]]:
    """Filter graphs whose sources open URLs with their own options: only refusing them keeps ffmpeg local."""
    escaped = internal.replace(":", "\\:")
    local = f"file:{scratch}/in.ts"
    return {
        "lavfi amovie": ["ffmpeg", "-f", "lavfi", "-i", f"amovie='{escaped}/amovie'", "-f", "null", "-"],
        "movie in -vf": ["ffmpeg", "-i", local, "-vf", f"movie={escaped}/movie", "-f", "null", "-"],
        "amovie in -filter_complex": [
            *("ffmpeg", "-i", local, "-filter_complex", f"amovie={escaped}/fc"),
            *("-f", "null", "-"),
        ],
    }


@pytest.mark.parametrize("name", [*hostile_ffmpeg("u", Path("s")), *filter_spellings("u", Path("s"))])
def test_hostile_ffmpeg_spellings_are_refused_and_never_connect(
    folders: tuple[Path, Path], internal: Internal, name: str
) -> None:
    spellings = {**hostile_ffmpeg(internal.url, folders[1]), **filter_spellings(internal.url, folders[1])}
    outcome = inside_worker(folders, f"subprocess.run({spellings[name]!r}, capture_output=True, timeout=30)")
    assert outcome.startswith("refused: blocked"), outcome
    internal.settle()
    assert internal.connections == []


CONNECTING = ["subfile with its own whitelist", "network output", "network input", "ffprobe on a URL"]
"""The spellings with which the real ffmpeg connects when nothing stops it (subfile and concat without a whitelist of
their own do not: their nested protocols inherit ffmpeg's default list). Not here: the tee muxer, whose outputs
ffmpeg 5.1 opens without the whitelist (seen connecting with it), and filter sources (movie, amovie), which open
with their own options; only the grammar keeps those out (`-f tee`, `-f lavfi`, `-vf movie=...` are refused)."""


@pytest.mark.parametrize("name", CONNECTING)
def test_the_forced_whitelist_alone_keeps_ffmpeg_off_the_network(
    folders: tuple[Path, Path], internal: Internal, name: str
) -> None:
    """The wall that does not depend on spelling: whatever the arguments, ffmpeg and ffprobe run with
    `-protocol_whitelist file,pipe` before every file they open, and then refuse every network protocol themselves.
    Run here without the shape check, on the real ffmpeg: the same arguments connect without the whitelist."""
    assert FFMPEG, "ffmpeg is part of the worker image; `make system-packages` installs it"
    argv = hostile_ffmpeg(internal.url, folders[1])[name]
    subprocess.run(argv, capture_output=True, timeout=30, check=False, cwd=folders[1])
    internal.settle()
    assert internal.connections, f"{name} did not connect even without the whitelist: the case proves nothing"
    internal.connections.clear()
    forced = with_protocol_whitelist(argv)
    assert forced.count("-protocol_whitelist") >= 1
    done = subprocess.run(
        forced, capture_output=True, text=True, errors="replace", timeout=30, check=False, cwd=folders[1]
    )
    internal.settle()
    assert internal.connections == [], done.stderr[-2000:]
    assert done.returncode != 0


def test_yt_dlp_shapes_run_on_local_files(folders: tuple[Path, Path]) -> None:
    """The commands yt-dlp builds (seen in a real run: version probe, remux fixup, ffprobe) start and work."""
    target, scratch = folders
    remux = [
        *("ffmpeg", "-y", "-loglevel", "repeat+info", "-i", f"file:{scratch}/in.ts", "-map", "0", "-dn"),
        *("-ignore_unknown", "-c", "copy", "-f", "mp4", "-movflags", "+faststart", f"file:{target}/out.mp4"),
    ]
    probe = ["ffprobe", "-hide_banner", "-show_format", "-show_streams", "-print_format", "json"]
    code = f"""
assert subprocess.run(["ffmpeg", "-bsfs"], capture_output=True).returncode == 0
done = subprocess.run({remux!r}, capture_output=True, text=True)
assert done.returncode == 0, done.stderr
info = json.loads(subprocess.run({probe!r} + ["file:{target}/out.mp4"], capture_output=True, text=True).stdout)
assert info["streams"][0]["codec_type"] == "video", info
"""
    assert inside_worker(folders, code) == "ran"
    assert (target / "out.mp4").stat().st_size > 0


def other_starts(target: Path, scratch: Path) -> dict[str, str]:
    """Every other door to a program, each of which would create the marker file when it opened."""
    touch = ["touch", str(scratch / "marker")]
    fake = (
        f"(scratch / 'ffmpeg').write_text('#!/bin/sh\\ntouch {scratch}/marker\\n')\n(scratch / 'ffmpeg').chmod(0o755)"
    )
    copy = f"subprocess.run({[FFMPEG or 'ffmpeg', '-i', f'file:{scratch}/in.ts', '-f', 'mpegts']!r} + "
    return {
        "a file named ffmpeg": f"{fake}\nsubprocess.run([str(scratch / 'ffmpeg'), '-version'])",
        "a file named ffmpeg first on PATH": (
            f"{fake}\nsubprocess.run(['ffmpeg', '-version'], "
            f"env={{**os.environ, 'PATH': f'{scratch}:' + os.environ['PATH']}})"
        ),
        "a link named ffprobe to a shell": (
            "os.symlink('/bin/sh', scratch / 'ffprobe')\n"
            f"subprocess.run([str(scratch / 'ffprobe'), '-c', 'touch {scratch}/marker'])"
        ),
        "ffmpeg with a preloaded library": (
            f"subprocess.run(['ffmpeg', '-version'], env={{**os.environ, 'LD_PRELOAD': '{scratch}/evil.so'}})"
        ),
        "ffmpeg reading outside the folders": copy + "['file:/etc/hostname'])",
        "ffmpeg writing outside the folders": copy + f"['file:{target.parent}/elsewhere.ts'])",
        "ffmpeg through a link out of the target": (
            f"os.symlink('{target.parent}', '{target}/out')\n" + copy + f"['file:{target}/out/elsewhere.ts'])"
        ),
        "ffmpeg writing to stdout": copy + "['-'])",
        "a shell": f"subprocess.run('touch {scratch}/marker', shell=True)",
        "another program": f"subprocess.run({touch!r})",
        "os.system": f"os.system('touch {scratch}/marker')",
        "os.posix_spawn": f"os.waitpid(os.posix_spawn('/usr/bin/touch', {touch!r}, os.environ), 0)",
        "os.execv": f"os.execv('/usr/bin/touch', {touch!r})",
        "multiprocessing spawn": (
            "import multiprocessing\np = multiprocessing.get_context('spawn').Process(target=os.getpid)\n"
            "p.start(); p.join()\nmarker.touch()"
        ),
        "multiprocessing forkserver": (
            "import multiprocessing\np = multiprocessing.get_context('forkserver').Process(target=os.getpid)\n"
            "p.start(); p.join()\nmarker.touch()"
        ),
        "ctypes and libc's system": f"import ctypes\nctypes.CDLL('libc.so.6').system(b'touch {scratch}/marker')",
        "ctypes and the program's own symbols": f"import ctypes\nctypes.CDLL(None).system(b'touch {scratch}/marker')",
        "gallery-dl's browser user agent (webbrowser)": (
            "from gallery_dl.extractor.common import _browser_useragent\n"
            f"_browser_useragent('touch {scratch}/marker %s')"
        ),
    }


@pytest.mark.parametrize("name", list(other_starts(Path("t"), Path("s"))))
def test_every_other_start_is_refused_at_once(folders: tuple[Path, Path], name: str) -> None:
    outcome = inside_worker(folders, other_starts(*folders)[name])
    assert outcome.startswith("refused: blocked"), outcome
    assert not (folders[1] / "marker").exists()


FORKS = {
    "a fork": """
pid = os.fork()
if pid == 0:
    try:
        subprocess.run(["touch", str(marker)])
    finally:
        os._exit(0)
os.waitpid(pid, 0)
""",
    # os.spawnv forks in Python and calls execv in the child, where the wall refuses it (exit status 127)
    "os.spawnv": "assert os.spawnv(os.P_WAIT, '/usr/bin/touch', ['touch', str(marker)]) == 127",
}


@pytest.mark.parametrize("name", list(FORKS))
def test_a_forked_child_stays_behind_the_wall(folders: tuple[Path, Path], name: str) -> None:
    """A fork runs no program (the lookahead forks), and the child is under the same wall."""
    assert inside_worker(folders, FORKS[name]) == "ran"
    assert not (folders[1] / "marker").exists()


# -- options that mean only what they say ------------------------------------------------------------------------

HOSTILE_VALUES = [
    "@{program} %s",
    "@sh -c 'touch {marker}' %s",
    "@ffmpeg -protocol_whitelist subfile,http,tcp -i subfile,,start,0,end,0,,:{internal}/ua -f tee [f=mpegts]"
    "{internal}/tee %s",
    "browser",
    "@",
    "@firefox",
    "+firefox",
    "auto",
    "{{0.__class__}}",
    "{{title!r}}",
    "%(title)s",
    "$HOME",
    "~",
    "../../outside",
    "/etc/passwd",
    "{internal}/option",
    "file:///etc/passwd",
    "y" * 256,
    "all",
    "-",
    "..",
    "bv*+ba/b",
]


def string_options() -> dict[str, tuple[str, bool]]:
    """Every option a spec can give an engine as text, from the models themselves (a new text option is covered
    without a change here): dotted spec path -> (engine that reads it, whether it takes a list of words)."""
    found: dict[str, tuple[str, bool]] = {}
    for prefix, model, engine in (
        ("", Options, ""),
        ("galleryDl.", GalleryDlOptions, "gallery-dl"),
        ("ytDlp.", YtDlpOptions, "yt-dlp"),
    ):
        for name, field in model.model_fields.items():
            text = str(field.annotation)
            if "str" not in text:
                continue
            reader = engine or ("yt-dlp" if name == "format" else "gallery-dl")
            found[prefix + (field.alias or name)] = (reader, "list" in text)
    return found


def _spec_options(path: str, value: str, words: bool) -> dict[str, Any]:
    engine, _, key = path.rpartition(".")
    item: Any = [value] if words else value
    return {engine: {key: item}} if engine else {key: item}


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_every_text_option_means_only_what_it_says(
    tmp_path: Path, loopback_site: str, internal: Internal, value: str
) -> None:
    """Every text option, set to a hostile value the schema admits, on the real engines: no program starts, nothing
    is read or written outside the target, nothing connects past the guard, the run ends; a user agent is sent as
    written."""
    program = tmp_path / "bin" / "ffmpeg"
    program.parent.mkdir()
    program.write_text(f"#!/bin/sh\ntouch {tmp_path}/marker\n")
    program.chmod(0o755)
    concrete = value.format(program=program, marker=tmp_path / "marker", internal=internal.url)
    for engine, url in (("gallery-dl", f"{loopback_site}/img/1.jpg"), ("yt-dlp", f"{loopback_site}/video.html")):
        options: dict[str, Any] = {"retries": 0}
        for path, (reader, words) in string_options().items():
            if reader != engine:
                continue
            candidate = _merge(options, _spec_options(path, concrete, words))
            try:
                parse_spec({"urls": [url], "target": {"pvc": {"claimName": "x"}}, "options": candidate})
            except ValidationError:
                continue  # the schema refuses it (the CRD has the same rule): it never reaches an engine
            options = candidate
        if options == {"retries": 0}:
            continue
        Handler.user_agents.pop("/img/1.jpg", None)
        storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
        spec = {"urls": [url], "engine": engine, "options": options}
        process = start_worker(tmp_path, spec, storage, egress=ONLY_THE_SITE)
        try:
            _, stderr = process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            pytest.fail(f"the worker hung with {options}")
        report = json.loads((tmp_path / "termination-log").read_text())
        internal.settle()
        assert internal.connections == [], (options, report)
        assert not (tmp_path / "marker").exists(), options
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "claim", "scratch", "termination-log"]
        assert report["final"], stderr[-2000:]
        if "user-agent" in options.get("galleryDl", {}):
            assert Handler.user_agents.get("/img/1.jpg") == concrete, report
    # tried == 0: the schema refuses the value for every text option (the CRD has the same rules), and nothing ran.


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) and key in merged else value
    return merged
