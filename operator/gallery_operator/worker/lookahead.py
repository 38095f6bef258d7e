"""gallery-dl's extractor lookup, done in a forked child while the worker starts.

gallery-dl finds the extractor for a URL by importing its ~300 extractor modules and compiling their patterns in
order until one matches: about 0.3 s of pure CPU for a direct link or a generic page, before the first byte moves.
The worker forks before its own imports (pydantic models, requests, boto3), so on a pod with two cores the lookup
runs beside them; the parent then imports only the module that matched. With one core nothing is lost but the fork.

Only the standard library may be imported at module level here: this runs before everything else.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
from typing import Any

Found = tuple[str, str] | None
"""(module, class name) of the first matching extractor, or None when none matches."""


class Lookahead:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.pid = 0
        self.fd = -1
        self._result: dict[str, Found] | None = None
        if not urls:
            return
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: look up, write one JSON object, leave without running any exit handlers
            os.close(read_end)
            code = 0
            try:
                payload = json.dumps(_lookup(urls)).encode()
                with os.fdopen(write_end, "wb") as out:
                    out.write(payload)
            except BaseException:
                code = 1
            os._exit(code)
        os.close(write_end)
        self.pid, self.fd = pid, read_end

    @classmethod
    def from_config(cls, raw: str | None) -> Lookahead:
        """From the worker's raw JSON config: the URLs that gallery-dl may be asked about."""
        try:
            spec = json.loads(raw or "{}").get("spec", {})
            urls = [str(u) for u in spec.get("urls", [])] if spec.get("engine", "auto") != "yt-dlp" else []
        except (ValueError, AttributeError):
            urls = []
        return cls(urls)

    def result(self, timeout: float = 30.0) -> dict[str, Found]:
        """What the child found; URLs it could not answer for are missing (the caller looks them up itself).
        A child that does not answer within ``timeout`` seconds is killed and counts as no answer."""
        if self._result is None:
            self._result = {}
            if self.fd >= 0:
                data = self._read(timeout)
                if data is None:
                    os.kill(self.pid, signal.SIGKILL)
                _, status = os.waitpid(self.pid, 0)
                if os.waitstatus_to_exitcode(status) == 0 and data:
                    answers: dict[str, Any] = json.loads(data)
                    self._result = {url: (found[0], found[1]) if found else None for url, found in answers.items()}
        return self._result

    def _read(self, timeout: float) -> bytes | None:
        """Everything the child writes, or None when it is not done by the deadline."""
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        with os.fdopen(self.fd, "rb", buffering=0) as pipe:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
                    return None
                chunk = pipe.read(65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)


def _lookup(urls: list[str]) -> dict[str, Found]:
    from gallery_dl import extractor  # noqa: PLC0415 - only in the child

    answers: dict[str, Found] = {}
    for url in urls:
        found = extractor.find(url)
        answers[url] = (type(found).__module__, type(found).__name__) if found is not None else None
    return answers
