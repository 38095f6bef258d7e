"""The extras' modules the worker defers (worker/deferred.py) are not run by yt-dlp's import, and are there when
yt-dlp uses them: AES decryption, yt-dlp's websocket requests, the worker's self-report. (The real worker decrypting
an AES-128 HLS stream with the deferral in place, and its self-report naming every extra:
tests/e2e/test_worker_real_sites.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from gallery_operator.worker.deferred import DEFERRED

pytestmark = pytest.mark.e2e

# NIST SP 800-38A, F.2.1 (CBC-AES128.Encrypt), the first block.
KEY = "2b7e151628aed2a6abf7158809cf4f3c"
IV = "000102030405060708090a0b0c0d0e0f"
PLAIN = "6bc1bee22e409f96e93d7e117393172a"
CIPHER = "7649abac8119b246cee98e9b12e9197d"


def in_fresh_python(code: str) -> dict[str, object]:
    """Run ``code`` after the worker's deferral and yt-dlp's import in a new interpreter; it prints one JSON value."""
    prelude = textwrap.dedent(
        """
        import json, sys, types
        from gallery_operator.worker import deferred
        deferred.install()
        import yt_dlp
        ydl = yt_dlp.YoutubeDL({"quiet": True})

        def ran(name):  # imported, and its code has run (a deferred module not yet used has not)
            return type(sys.modules.get(name)) is types.ModuleType
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_aes_is_deferred_at_import_and_decrypts_when_used() -> None:
    result = in_fresh_python(
        f"""
        from yt_dlp import aes
        from yt_dlp.dependencies import Cryptodome
        before = {{name: ran(name) for name in sorted(deferred.DEFERRED)}}
        raw_api_before = "Cryptodome.Util._raw_api" in sys.modules
        plain = aes.aes_cbc_decrypt_bytes(bytes.fromhex("{CIPHER}"), bytes.fromhex("{KEY}"), bytes.fromhex("{IV}"))
        print(json.dumps({{
            "before": before,
            "raw_api_before": raw_api_before,
            "present": bool(Cryptodome.AES) and Cryptodome._yt_dlp__identifier == "Cryptodome",
            "plain": plain.hex(),
            "aes_after": ran("Cryptodome.Cipher.AES"),
        }}))
        """
    )
    assert "Cryptodome.Cipher.AES" in DEFERRED
    # Nothing of pycryptodomex's compiled code was loaded by yt-dlp's import and YoutubeDL() ...
    assert result["before"] == dict.fromkeys(sorted(DEFERRED), False), result
    assert result["raw_api_before"] is False
    # ... yet yt-dlp sees pycryptodomex (its HLS downloader decrypts by itself), and AES works at its first use.
    assert result["present"] is True
    assert (result["plain"], result["aes_after"]) == (PLAIN, True)


def test_every_deferred_module_loads_when_used() -> None:
    """Each deferred module works at its first use: RSA, SHA1 and CMAC, Blowfish, the PKCS#1 ciphers."""
    result = in_fresh_python(
        """
        from Cryptodome.Cipher import AES, Blowfish, PKCS1_OAEP, PKCS1_v1_5
        from Cryptodome.Hash import CMAC, SHA1
        from Cryptodome.PublicKey import RSA
        key = RSA.generate(1024)
        secret = PKCS1_OAEP.new(key).decrypt(PKCS1_OAEP.new(key.publickey()).encrypt(b"k"))
        legacy = PKCS1_v1_5.new(key).decrypt(PKCS1_v1_5.new(key.publickey()).encrypt(b"v"), None)
        mac = CMAC.new(bytes(16), ciphermod=AES).update(b"m").hexdigest()
        print(json.dumps({
            "rsa": [secret.decode(), legacy.decode()],
            "sha1": SHA1.new(b"abc").hexdigest(),
            "blowfish": Blowfish.new(bytes(8), Blowfish.MODE_ECB).encrypt(bytes(8)).hex(),
            "cmac": len(mac),
            "all_ran": all(ran(name) for name in deferred.DEFERRED),
        }))
        """
    )
    assert result == {
        "rsa": ["k", "v"],
        "sha1": "a9993e364706816aba3e25717850c26c9cd0d89d",
        "blowfish": "4ef997456198dd78",  # the all-zero key and block of Schneier's test vectors
        "cmac": 32,
        "all_ran": True,
    }


def test_yt_dlp_still_speaks_websockets() -> None:
    """A websocket request through yt-dlp's own request director, to a websockets server on loopback."""
    result = in_fresh_python(
        """
        import threading
        from websockets.sync.server import serve
        from yt_dlp.networking import Request

        def echo(connection):
            for message in connection:
                connection.send("echo: " + message)

        with serve(echo, "127.0.0.1", 0) as server:
            threading.Thread(target=server.serve_forever, daemon=True).start()
            port = server.socket.getsockname()[1]
            response = ydl.urlopen(Request(f"ws://127.0.0.1:{port}/"))
            response.send("ping")
            answer = response.recv()
            response.close()
            server.shutdown()
        print(json.dumps({"answer": answer, "handler": type(response).__module__}))
        """
    )
    assert result == {"answer": "echo: ping", "handler": "yt_dlp.networking._websockets"}
