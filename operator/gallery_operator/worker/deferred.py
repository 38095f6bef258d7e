"""Modules of yt-dlp's extras that load when first used, not when yt-dlp is imported.

``yt_dlp.dependencies`` imports every optional dependency up front. pycryptodomex is the costly one: its ciphers,
hashes and RSA load their compiled libraries through cffi or ctypes, about half of the ~90 ms the extras add to
``import yt_dlp`` (docs/benchmarks.md), while only an AES-128 HLS stream (and a few extractors' own crypto) ever
uses them. yt-dlp imports them as modules (``from Cryptodome.Cipher import AES``) and checks only that they are
there (``if Cryptodome.AES:``), so they can be modules whose code runs at their first attribute access: the
standard library's ``importlib.util.LazyLoader``. yt-dlp still sees each extra as present (its HLS downloader
keeps decrypting by itself instead of handing the stream to ffmpeg), and the first ``AES.new`` loads the module.

Only modules whose import yt-dlp does not look into go here: websockets and mutagen are used at yt-dlp's import
(a class attribute set, names imported from their modules), so deferring them would load them at once anyway.

The image's Python (3.13) guards a lazy module's first load with a lock, so two threads using one at once both
wait for it; older Pythons do not, which is safe here only because yt-dlp decrypts a stream's fragments on one
thread (the one that consumes the fragment pool's results, whatever ``concurrent_fragment_downloads`` says) and
the worker runs one extraction at a time.

Only the standard library may be imported here: this is installed before the worker's other imports.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

DEFERRED = frozenset(
    {
        # Imported by yt_dlp.dependencies.Cryptodome; each loads pycryptodomex's compiled code when it runs.
        "Cryptodome.Cipher.AES",
        "Cryptodome.Cipher.Blowfish",
        "Cryptodome.Cipher.PKCS1_OAEP",
        "Cryptodome.Cipher.PKCS1_v1_5",
        "Cryptodome.Hash.CMAC",
        "Cryptodome.Hash.SHA1",
        "Cryptodome.PublicKey.RSA",
    }
)


class _DeferringFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of DEFERRED as the other finders do, with their loader wrapped in a LazyLoader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in DEFERRED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = importlib.util.LazyLoader(spec.loader)
            return spec
        return None


def install() -> None:
    """For the rest of this process (once): the modules of DEFERRED run at their first use."""
    if not any(isinstance(finder, _DeferringFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _DeferringFinder())
