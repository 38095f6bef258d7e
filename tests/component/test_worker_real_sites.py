"""What real sites need, on real parts: AES-128 encrypted HLS decrypted by yt-dlp's own downloader, Brotli-encoded
responses, YouTube's JavaScript challenge provider with deno behind the program wall, and the worker's self-report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gallery_harness.site import Handler, image_bytes
from gallery_operator.workerconfig import PvcStorage
from tests.component.program_wall import ONLY_THE_SITE, PROVIDER, Internal, inside_worker
from tests.component.workers import run_worker

DENO = shutil.which("deno", path=str(Path(sys.executable).parent)) or "deno"
"""The `deno` wheel's binary, beside this Python (on PATH in the image)."""
DENO_SHAPE = [
    *(DENO, "run", "--ext=js", "--no-code-cache", "--no-prompt", "--no-remote", "--no-lock"),
    *("--node-modules-dir=none", "--no-config", "--no-npm", "--cached-only", "-"),
]
"""How yt-dlp's challenge provider runs deno (yt_dlp/extractor/youtube/jsc/_builtin/deno.py), `deno` resolved by
the wall to the binary of the `deno` wheel."""


def aes_stream(folder: Path, site: str) -> None:
    """A four-second AES-128 HLS stream made by the real ffmpeg, put on the fixture site under /aes/ with its key."""
    key = bytes(range(16))
    (folder / "key.bin").write_bytes(key)
    (folder / "keyinfo").write_text(f"{site}/aes/key.bin\n{folder / 'key.bin'}\n")
    subprocess.run(
        [
            *("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"),
            *("testsrc=duration=4:size=64x48:rate=10", "-c:v", "mpeg2video", "-f", "hls", "-hls_time", "1"),
            *("-hls_playlist_type", "vod", "-hls_key_info_file", str(folder / "keyinfo")),
            *("-hls_segment_filename", str(folder / "seg%d.ts"), str(folder / "stream.m3u8")),
        ],
        check=True,
    )
    assert "METHOD=AES-128" in (folder / "stream.m3u8").read_text()
    for file in folder.iterdir():
        kind = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".bin": "application/octet-stream"}
        if file.suffix in kind:
            Handler.files[f"/aes/{file.name}"] = (file.read_bytes(), kind[file.suffix])


@pytest.mark.parametrize("cffi", [True, False], ids=["cffi", "ctypes as in the image"])
def test_aes_128_hls_is_decrypted_by_yt_dlp_itself(tmp_path: Path, loopback_site: str, cffi: bool) -> None:
    """pycryptodomex lets yt-dlp's native HLS downloader decrypt the stream; without it yt-dlp hands the stream to
    ffmpeg, which the program wall refuses on a URL (Failed, Blocked). The result plays: ffprobe reads 4 seconds.
    The image has no cffi (a development dependency here), so pycryptodomex loads its libraries with ctypes there,
    through the wall's ctypes rules: both ways are run."""
    stream = tmp_path / "stream"
    stream.mkdir()
    aes_stream(stream, loopback_site)
    env = {}
    if not cffi:
        (tmp_path / "no-cffi").mkdir()
        (tmp_path / "no-cffi" / "cffi.py").write_text("raise ImportError('cffi is not in the image')\n")
        env["PYTHONPATH"] = str(tmp_path / "no-cffi")
    before = Handler.hits.get("/aes/key.bin", 0)
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    spec = {"urls": [f"{loopback_site}/aes/stream.m3u8"], "engine": "yt-dlp"}
    code, report = run_worker(tmp_path, spec, storage, egress=ONLY_THE_SITE, env=env)
    assert (code, report["outcome"], report["itemsDone"]) == (0, "Succeeded", 1), report
    assert Handler.hits.get("/aes/key.bin", 0) > before  # the key was fetched by the worker, through the guard
    stored = [p for p in (tmp_path / "claim").iterdir() if p.suffix == ".mp4"]
    assert len(stored) == 1, list((tmp_path / "claim").iterdir())
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-print_format", "json", str(stored[0])],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(probe.stdout)
    assert info["streams"][0]["codec_type"] == "video"
    assert 3.5 < float(info["format"]["duration"]) < 4.5


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
def test_a_brotli_encoded_response_is_stored_decoded(tmp_path: Path, loopback_site: str, engine: str) -> None:
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    spec = {"urls": [f"{loopback_site}/br/5.jpg"], "engine": engine}
    code, report = run_worker(tmp_path, spec, storage, egress=ONLY_THE_SITE)
    assert (code, report["outcome"]) == (0, "Succeeded"), report
    stored = [p for p in (tmp_path / "claim").iterdir() if p.is_file()]
    assert [p.read_bytes() for p in stored] == [image_bytes(5)]


def test_the_challenge_provider_has_deno_and_the_ejs_scripts_behind_the_wall(folders: tuple[Path, Path]) -> None:
    assert inside_worker(folders, PROVIDER) == "ran"


_SANDBOX = """
import json, subprocess
script = '''
const found = {};
async function attempt(name, action) {
  try { await action(); found[name] = "allowed"; } catch (error) { found[name] = String(error && error.name); }
}
await attempt("fetch", () => fetch("%(internal)s/fetch"));
await attempt("connect", () => Deno.connect({hostname: "127.0.0.2", port: %(port)s}));
await attempt("read", () => Deno.readTextFile("%(secret)s"));
await attempt("write", () => Deno.writeTextFile("%(written)s", "x"));
await attempt("env", () => Deno.env.get("HOME"));
await attempt("run", () => new Deno.Command("touch", {args: ["%(written)s"]}).output());
await attempt("ffi", () => Deno.dlopen("libc.so.6", {}));
await attempt("remote import", () => import("%(internal)s/module.js"));
console.log(JSON.stringify(found));
'''
done = subprocess.run(%(shape)r, input=script, capture_output=True, text=True, timeout=60)
result = json.loads(done.stdout)
"""


def test_a_script_run_by_deno_cannot_reach_the_network_files_or_programs(
    folders: tuple[Path, Path], internal: Internal
) -> None:
    target, scratch = folders
    (scratch / "secret.txt").write_text("secret")
    code = _SANDBOX % {
        "internal": internal.url,
        "port": internal.url.rsplit(":", 1)[1],
        "secret": scratch / "secret.txt",
        "written": target / "written",
        "shape": DENO_SHAPE,
    }
    code += "\nassert all(v != 'allowed' for v in result.values()), result\nprint(json.dumps(result))"
    assert inside_worker(folders, code) == "ran"
    internal.settle()
    assert internal.connections == []
    assert not (target / "written").exists()


@pytest.mark.parametrize(
    "argv",
    [
        [DENO, "run", "--allow-net", *DENO_SHAPE[2:]],
        [DENO, "run", "-A", *DENO_SHAPE[2:]],
        [DENO, "run", "--allow-all", *DENO_SHAPE[2:]],
        [*DENO_SHAPE[:-1], "--allow-read=/", "-"],
        [*DENO_SHAPE[:-1], "--unsafely-ignore-certificate-errors", "-"],
        [*DENO_SHAPE[:-1], "http://127.0.0.2/module.js"],
        [*DENO_SHAPE[:-1], "/etc/hostname"],
        [DENO, "run", "--ext=js", "--no-prompt", "-"],
        [DENO, "eval", "console.log(1)"],
        [DENO, "repl"],
        [DENO, "install", "npm:left-pad"],
        [DENO, "upgrade"],
    ],
)
def test_deno_runs_only_in_the_providers_shape(folders: tuple[Path, Path], argv: list[str]) -> None:
    outcome = inside_worker(folders, f"subprocess.run({argv!r}, input='', capture_output=True, timeout=60)")
    assert outcome.startswith(("refused: blocked: deno runs only", "refused: blocked: deno option")), outcome


def test_a_deno_elsewhere_is_another_program(folders: tuple[Path, Path]) -> None:
    copy = folders[1] / "deno"
    shutil.copy(DENO, copy)
    outcome = inside_worker(folders, f"subprocess.run([{str(copy)!r}, '--version'], capture_output=True)")
    assert outcome.startswith("refused: blocked: deno is not a program the worker runs"), outcome


def test_the_worker_reports_its_engines_extras_and_programs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gallery_operator.worker", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout)
    assert report["engines"]["yt-dlp"] and report["engines"]["gallery-dl"]
    for extra in ("brotli", "pycryptodomex", "mutagen", "websockets", "yt-dlp-ejs"):
        assert report["extras"][extra]["available"], extra
    assert not report["extras"]["curl-cffi"]["available"] and report["impersonation"] is False
    assert set(report["programs"]) == {"ffmpeg", "ffprobe", "deno"}
    assert report["programs"]["deno"]["version"].startswith("deno 2.")
    assert report["programs"]["ffmpeg"]["version"].startswith("ffmpeg version")
    assert report["javascriptChallenges"] is True
