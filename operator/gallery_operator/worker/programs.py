# ruff: noqa: PTH109, PTH113, PTH118, PTH119 - paths as exec sees them: strings, joined to the cwd given
"""The program wall: the only programs a worker starts are the image's ffmpeg and ffprobe, in the shapes yt-dlp's
post-processors build, on local files under the worker's folders, and never able to open the network; and deno, in
the one shape yt-dlp's JavaScript challenge provider runs it (a script on stdin, no permission, no remote module).

yt-dlp hands files to ffmpeg to merge, remux and fix them, and probes them with ffprobe. Nothing else may start:
engines can be talked into running commands (gallery-dl's `@browser` user agent goes through ``webbrowser``, exec
post-processors, ...), and any program connects by itself, past the egress guard in this process's name resolution.

The wall, installed once per process (an audit hook cannot be removed), checks every door to a new program:
- ``subprocess``, ``os.exec*``, ``os.spawn*``, ``os.posix_spawn*`` (audit events) and ``_posixsubprocess.fork_exec``
  (which multiprocessing's `spawn` and `forkserver` start methods call without an audit event) admit only the real
  ffmpeg and ffprobe executables, resolved once when the wall is installed and compared after resolving what would
  be executed (a file named `ffmpeg` elsewhere is just another program), with the worker's own environment;
- their arguments must parse in the grammar of the options yt-dlp uses, with each value in the shape yt-dlp gives
  it; no filter graph that could open a file or URL (`lavfi`, `movie`, `amovie`); every file is `file:PATH` under
  the target or scratch folder (links resolved);
- `-protocol_whitelist file,pipe` is inserted before every file ffmpeg opens: ffmpeg itself then refuses every
  network protocol (nested ones too: subfile, concat, tee slaves, playlists), whatever the spelling of the
  arguments. This is the part that does not depend on the grammar being complete;
- ``os.system`` is refused; ``ctypes`` may load and look up only libraries of the installed Python packages (no
  libc, no symbols of the program itself). A fork starts no program and the child stays behind the same wall.

A refused start raises ``ProgramRefused`` (a ``PermissionError``, as a failed start is), and is recorded: the run
reports every refusal as a failure with reason Blocked, also one that an engine swallowed. ``webbrowser`` is closed
outright: it took a failed start for "no such browser" and then waited for ever for the browser's request (gallery-dl's
`@browser` user agent hung the worker that way). The standard library's probes of the system (``ldconfig -p`` from
``ctypes.util``, ``file`` from ``platform``, both at the import of pycryptodomex) and starts of programs that do not
exist are refused without a record: they could not have run, or learn only what the system is.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import sysconfig
import threading
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

PROGRAMS = ("ffmpeg", "ffprobe", "deno")
DENO_OPTIONS = (
    *(
        "--ext=js",
        "--no-code-cache",
        "--no-prompt",
        "--no-remote",
        "--no-lock",
        "--node-modules-dir=none",
        "--no-config",
    ),
)
"""What yt-dlp's EJS challenge provider always gives `deno run`: no remote module, no prompt, no config file."""
_DENO_MAY_ADD = frozenset({"--cached-only", "--no-npm", "--v8-flags=--jitless"})
WHITELIST = ("-protocol_whitelist", "file,pipe")
KEPT_ENV_PREFIXES = ("LD_", "PYTHON", "PATH")
"""Environment variables a started program must get as the worker has them (a preloaded library runs code)."""


class ProgramRefused(PermissionError):
    """A program start the worker does not make; the message starts with 'blocked' for the failure classifier.
    An OSError, as a failed start is: libraries that probe for a program or a library then take it as absent."""


# -- the grammar of the arguments yt-dlp gives ffmpeg and ffprobe ------------------------------------------------

_FORMATS = "mp4|ipod|mov|matroska|webm|mpegts|mpeg|adts|flac|ogg|opus|mp3|wav|asf|webvtt|srt|ass|image2|concat|null"
_CODEC = r"copy|mov_text|[a-z0-9_]{2,32}"
_VALUE = {
    "-loglevel": r"(repeat\+)?(quiet|panic|fatal|error|warning|info|verbose|debug)",
    "-v": r"(repeat\+)?(quiet|panic|fatal|error|warning|info|verbose|debug)",
    "-movflags": r"\+faststart",
    "-map": r"-?\d{1,3}(:[a-z](:\d{1,3})?|:\d{1,3})?\??",
    "-map_metadata": r"-?\d{1,3}",
    "-map_chapters": r"-?\d{1,3}",
    "-c": _CODEC,
    "-codec": _CODEC,
    "-acodec": _CODEC,
    "-vcodec": _CODEC,
    "-scodec": _CODEC,
    "-f": _FORMATS,
    "-safe": r"0|1",
    "-bsf": r"setts=ts=TS-STARTPTS",
    "-bsf:a": r"aac_adtstoasc",
    "-bsf:v": r"mjpeg2jpeg",
    "-b:a": r"\d{1,5}k",
    "-q:a": r"\d{1,2}(\.\d{1,3})?",
    "-vbr": r"\d",
    "-vtag": r"[A-Za-z0-9]{4}",
    "-aspect": r"\d{1,6}(\.\d{1,6})?(:\d{1,6})?",
    "-vf": r"setpts=PTS-STARTPTS",
    "-ss": r"\d{1,10}(\.\d{1,9})?|\d{1,2}:\d{2}:\d{2}(\.\d{1,9})?",
    "-t": r"\d{1,10}(\.\d{1,9})?",
    "-to": r"\d{1,10}(\.\d{1,9})?",
    "-force_key_frames": r"\d{1,10}\.\d{6}(,\d{1,10}\.\d{6}){0,9999}",
    "-update": r"1",
    "-pattern_type": r"none",
    "-print_format": r"json",
    "-protocol_whitelist": r"file,pipe",
}
_VALUE_PATTERNS = [
    (re.compile(r"-(c|codec):[vas](:\d{1,3})?"), _CODEC),
    (re.compile(r"-metadata(:[sgc](:[a-z0-9]{1,16}){0,2})?"), r"[^\x00]{0,65536}"),  # text ffmpeg only stores
    (re.compile(r"-disposition:[vas]?:?\d{1,3}"), r"[a-z_+-]{1,64}|0"),
]
_FLAGS = frozenset(
    {
        "-y",
        "-n",
        "-nostdin",
        "-hide_banner",
        "-dn",
        "-vn",
        "-an",
        "-sn",
        "-ignore_unknown",
        "-show_streams",
        "-show_format",
        "-show_chapters",
        "-show_programs",
        "-bsfs",
        "-version",
    }
)
_FILE_OPTIONS = frozenset({"-i", "-attach"})
"""Options whose value is a file ffmpeg opens."""
_FULL = {key: re.compile(f"(?:{value})") for key, value in _VALUE.items()}


def _value_rule(option: str) -> re.Pattern[str] | None:
    if option in _FULL:
        return _FULL[option]
    for name, value in _VALUE_PATTERNS:
        if name.fullmatch(option):
            return re.compile(f"(?:{value})")
    return None


@dataclass(frozen=True)
class Shape:
    """What a command line opens, once it parses in the grammar."""

    files: tuple[str, ...]
    """Every file argument, as written (``file:PATH``)."""
    opened_at: tuple[int, ...]
    """Index of the argument that opens each file (`-i`, `-attach` or the file itself): the whitelist goes before."""


def parse(program: str, arguments: Sequence[str]) -> Shape:
    """The files a command line of ``program`` (ffmpeg or ffprobe) opens; ValueError when it is not in the grammar
    of what yt-dlp builds. ``arguments`` excludes the program itself."""
    files: list[str] = []
    opened_at: list[int] = []
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if argument in _FLAGS:
            index += 1
            continue
        if argument in _FILE_OPTIONS:
            if index + 1 >= len(arguments):
                raise ValueError(f"{argument} without a value")
            files.append(arguments[index + 1])
            opened_at.append(index)
            index += 2
            continue
        if argument.startswith("-") and argument != "-":
            rule = _value_rule(argument)
            if rule is None:
                raise ValueError(f"{program} option {argument[:60]!r} is not one yt-dlp uses")
            if index + 1 >= len(arguments) or not rule.fullmatch(arguments[index + 1]):
                value = arguments[index + 1][:60] if index + 1 < len(arguments) else ""
                raise ValueError(f"{program} option {argument} may not be {value!r}")
            index += 2
            continue
        files.append(argument)  # an output (ffmpeg) or the input (ffprobe)
        opened_at.append(index)
        index += 1
    return Shape(tuple(files), tuple(opened_at))


def with_protocol_whitelist(argv: Sequence[str]) -> list[str]:
    """``argv`` (program first) with `-protocol_whitelist file,pipe` before every file it opens (every `-i`, every
    `-attach`, every other argument that is not an option or its value); left as is where it is there already.
    Without the grammar, for arguments outside it: an argument that is not an option is taken as a file."""
    program, arguments = argv[0], list(argv[1:])
    try:
        opened_at = parse("ffmpeg", arguments).opened_at
    except ValueError:
        opened_at = _openings(arguments)
    forced = [program]
    for index, argument in enumerate(arguments):
        if index in opened_at and tuple(forced[-2:]) != WHITELIST:
            forced += WHITELIST
        forced.append(argument)
    return forced


def deno_refusal(arguments: Sequence[str]) -> str | None:
    """Why deno may not run with ``arguments`` (after the program), or None: only its version, or `deno run` with
    yt-dlp's options and the script on stdin. No `--allow-*` permission, no `eval`, no script file or URL: deno's
    own sandbox then denies the script the network, files, the environment, programs and native libraries."""
    if list(arguments) == ["--version"]:
        return None
    if len(arguments) < 2 or arguments[0] != "run" or arguments[-1] != "-":
        return "deno runs only as `deno run [yt-dlp's options] -` (a script on stdin)"
    options = arguments[1:-1]
    unknown = [option for option in options if option not in DENO_OPTIONS and option not in _DENO_MAY_ADD]
    if unknown:
        return f"deno option {unknown[0][:60]!r} is not one yt-dlp's challenge provider uses"
    missing = [option for option in DENO_OPTIONS if option not in options]
    return f"deno runs only with {missing[0]}" if missing else None


def _openings(arguments: Sequence[str]) -> tuple[int, ...]:
    """Where files are opened, guessed for any arguments: each option takes one value unless it is a known flag."""
    found, index = [], 0
    while index < len(arguments):
        argument = arguments[index]
        if argument in _FILE_OPTIONS:
            if index + 1 < len(arguments):
                found.append(index)
            index += 2
        elif argument.startswith("-") and argument != "-":
            index += 1 if argument in _FLAGS else 2
        else:
            found.append(index)
            index += 1
    return tuple(found)


# -- the wall ---------------------------------------------------------------------------------------------------


@dataclass
class _Wall:
    programs: dict[str, str]
    """Real path of each admitted executable -> its name (ffmpeg, ffprobe)."""
    libraries: tuple[str, ...]
    """Folders of the installed Python packages: the only place ctypes may load a library from."""
    found: dict[str, str]
    """Name -> where PATH had it when the wall was installed (for yt-dlp's ffmpeg_location)."""
    environment: dict[str, str]
    """The variables of KEPT_ENV_PREFIXES as the worker started with them (worker/inputs.py)."""
    folders: tuple[str, ...] = ()
    """Real paths of the folders ffmpeg may read and write (the target and scratch); none until ``confine``."""


_wall: _Wall | None = None
_refusals: list[str] = []
_lock = threading.Lock()
_DOORS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.exec", "os.spawn"})
_LIBRARY_DOORS = frozenset({"ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle"})


def _executable(command: Any, cwd: Any, env: Any) -> str | None:
    """The real path of what exec would run for ``command`` (a name is searched in PATH as exec searches it)."""
    name = os.fsdecode(command)
    base = os.fsdecode(cwd) if cwd is not None else os.getcwd()
    if os.sep in name:
        return os.path.realpath(os.path.join(base, name))
    for folder in os.get_exec_path(env):
        candidate = os.path.join(base, folder, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    return None


def _inside(path: str, folders: Sequence[str]) -> bool:
    return any(path == folder or path.startswith(folder + os.sep) for folder in folders)


def refusal(executable: Any, argv: Any, cwd: Any = None, env: Any = None) -> str | None:
    """Why the wall refuses to start ``executable`` with ``argv`` (a list, changed in place to carry the protocol
    whitelist), or None when it may start."""
    wall = _wall
    if wall is None:
        return "the program wall is not installed"
    if isinstance(argv, str | bytes) or not argv:
        return "commands through a shell are not run"
    real = _executable(executable if executable is not None else argv[0], cwd, env)
    name = wall.programs.get(real or "")
    if name is None:
        shown = os.path.basename(os.fsdecode(executable if executable is not None else argv[0]))
        return f"{shown or 'a program'} is not a program the worker runs (only the image's ffmpeg, ffprobe and deno)"
    if env is not None:
        environment = {os.fsdecode(k): os.fsdecode(v) for k, v in dict(env).items()}
        kept = wall.environment
        changed = sorted(
            key
            for key in {*environment, *kept}
            if key.startswith(KEPT_ENV_PREFIXES) and environment.get(key) != kept.get(key)
        )
        if changed:
            return f"{name} may not start with {changed[0]} changed"
    arguments = [os.fsdecode(a) if isinstance(a, bytes | os.PathLike) else str(a) for a in argv[1:]]
    if name == "deno":
        return deno_refusal(arguments)
    try:
        files = parse(name, arguments).files
    except ValueError as error:
        guessed = [arguments[i + 1] if arguments[i] in _FILE_OPTIONS else arguments[i] for i in _openings(arguments)]
        remote = [file for file in guessed if not file.startswith("file:") and file not in _FILE_OPTIONS]
        if not remote:  # else say which URL it wanted: the clearer reason
            return f"{error}: not a command yt-dlp builds"
        files = tuple(remote)
    base = os.fsdecode(cwd) if cwd is not None else os.getcwd()
    for file in files:
        if not file.startswith("file:"):
            return f"{name} may not open {file[:200]!r}: only local files (file:PATH) under the download's folders"
        path = os.path.realpath(os.path.join(base, file.removeprefix("file:")))
        if not _inside(path, wall.folders):
            return f"{name} may not open {file[:200]!r}: outside the download's folders"
    if isinstance(argv, list):
        argv[:] = [argv[0], *with_protocol_whitelist([name, *arguments])[1:]]
    elif list(argv[1:]) != with_protocol_whitelist([name, *arguments])[1:]:
        return f"{name} must start with {' '.join(WHITELIST)} before each file"
    return None


_PROBING_MODULES = frozenset({"ctypes.util", "platform"})
"""Standard modules that start programs only to learn about the system (``ldconfig -p`` for a library, ``file`` for
the interpreter's architecture; pycryptodomex calls both at import) and take a failed start as "unknown"."""


def _refuse(why: str, *, quiet: bool = False) -> None:
    message = f"blocked: {why}"
    if not quiet and not _probe():
        with _lock:
            _refusals.append(message)
    raise ProgramRefused(message)


def _probe() -> bool:
    """Whether the start being refused comes from one of the standard library's probes of the system."""
    frame = sys._getframe(2)
    for _ in range(12):
        if frame is None:
            return False
        if frame.f_globals.get("__name__") in _PROBING_MODULES:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _closed(*args: Any, **kwargs: Any) -> Any:
    _refuse("no browser is started (webbrowser)")


def _closed_webbrowser() -> types.ModuleType:
    """``webbrowser`` as the worker has it: every way to a browser refused at once (importing the real module
    would cost start-up time for nothing)."""
    module = types.ModuleType("webbrowser", "Closed by the worker's program wall.")
    module.Error = type("Error", (Exception,), {})  # type: ignore[attr-defined]
    for name in ("get", "open", "open_new", "open_new_tab", "register"):
        setattr(module, name, _closed)
    return module


def _library_refusal(event: str, args: tuple[Any, ...]) -> str | None:
    wall = _wall
    assert wall is not None
    if event == "ctypes.dlopen":
        name = args[0]
        path = os.path.realpath(os.fsdecode(name)) if name is not None and os.sep in os.fsdecode(name) else None
        if path is None or not _inside(path, wall.libraries):
            return f"ctypes may not load {name!r}: only libraries of the installed Python packages"
        return None
    library = getattr(args[0], "_name", None) if event == "ctypes.dlsym" else None
    if event == "ctypes.dlsym" and args[0] is _python_api() and args[-1] in _PYTHON_API:
        return None
    path = os.path.realpath(os.fsdecode(library)) if isinstance(library, str | bytes) and library else None
    if path is None or not _inside(path, wall.libraries):
        return f"ctypes may not look up {args[-1]!r} in {library!r}"
    return None


_PYTHON_API = frozenset({"PyObject_GetBuffer", "PyBuffer_Release"})
"""Functions of Python's own C API that libraries may look up through ``ctypes.pythonapi``: pycryptodomex's ctypes
backend (used when cffi is absent, as in the image) takes buffers with these two."""


def _python_api() -> Any:
    import ctypes  # noqa: PLC0415 - imported by install() already

    return ctypes.pythonapi


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _DOORS:
        if event == "subprocess.Popen":
            executable, argv, cwd, env = args
        elif event == "os.spawn":
            _, executable, argv, env = args
            cwd = None
        else:
            executable, argv, env = args
            cwd = None
        if event == "os.exec":
            _refuse("a worker never replaces itself with another program")
        why = refusal(executable, argv, cwd, env)
        if why is not None:
            # a program that is not there could not have started: refused without a failure (yt-dlp asks whether
            # programs it could use exist), like any failed start
            _refuse(why, quiet=_missing(executable, argv, cwd, env))
    elif event == "os.system":
        _refuse("commands through a shell are not run")
    elif event in _LIBRARY_DOORS:
        why = _library_refusal(event, args)
        if why is not None:
            _refuse(why)


def _missing(executable: Any, argv: Any, cwd: Any, env: Any) -> bool:
    """Whether the program named is not there at all."""
    command = executable if executable is not None else (argv[0] if isinstance(argv, list | tuple) and argv else None)
    try:
        return command is not None and _executable(command, cwd, env) is None
    except (TypeError, ValueError):
        return False


def _guarded_fork_exec(original: Callable[..., int]) -> Callable[..., int]:
    def fork_exec(args: Any, executables: Any, *rest: Any) -> int:
        cwd, env = rest[2], rest[3]
        environment = dict(os.fsdecode(e).split("=", 1) for e in env) if env is not None else None
        argv = list(args or [])  # what runs: with the protocol whitelist when refusal() adds it
        # exec tries each candidate in order and runs the first that exists: that one is checked
        executable = next((e for e in executables if os.path.isfile(os.fsdecode(e))), None)
        if executable is not None:
            why = refusal(executable, argv, cwd, environment)
            if why is not None:
                _refuse(why)
        return original(argv, executables, *rest)

    return fork_exec


def install(environment: Iterable[tuple[str, str]]) -> None:
    """From now on, for the life of this process: only ffmpeg and ffprobe of this image, on no folder yet, started
    with the variables of KEPT_ENV_PREFIXES as in ``environment`` (the pod's, as worker/inputs.py read them)."""
    global _wall  # noqa: PLW0603 - one wall per process
    if _wall is not None:
        return
    import _posixsubprocess  # noqa: PLC0415 - the start that multiprocessing makes without an audit event
    import ctypes  # noqa: F401, PLC0415 - loads its own handles (pythonapi) before the wall watches

    # deno as yt-dlp finds it first: beside this Python (the `deno` wheel's binary), else on PATH
    beside = os.path.join(sysconfig.get_path("scripts"), "deno")
    found = {name: path for name in PROGRAMS if (path := shutil.which(name)) is not None}
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        found["deno"] = beside
    programs = {os.path.realpath(path): name for name, path in found.items()}
    paths = sysconfig.get_paths()
    libraries = tuple(sorted({os.path.realpath(paths[key]) for key in ("purelib", "platlib")}))
    kept = {key: value for key, value in environment if key.startswith(KEPT_ENV_PREFIXES)}
    _wall = _Wall(programs, libraries, found, kept)
    _posixsubprocess.fork_exec = _guarded_fork_exec(_posixsubprocess.fork_exec)
    sys.modules["webbrowser"] = _closed_webbrowser()
    sys.addaudithook(_audit)


def confine(*folders: os.PathLike[str] | str) -> None:
    """The folders (the download's target and scratch) where ffmpeg and ffprobe may read and write."""
    if _wall is None:
        raise RuntimeError("install the wall first")
    _wall.folders = tuple(os.path.realpath(folder) for folder in folders)


def take_refusals() -> list[str]:
    """The refusals since the last call (an engine may have swallowed the exception)."""
    with _lock:
        taken = list(_refusals)
        _refusals.clear()
    return taken


def location() -> str | None:
    """The real ffmpeg the wall admits, for yt-dlp's ``ffmpeg_location`` (so it never searches PATH)."""
    return _wall.found.get("ffmpeg") if _wall is not None else None


def admitted() -> dict[str, str]:
    """Name -> path of each program the wall admits (found when it was installed)."""
    return dict(_wall.found) if _wall is not None else {}
