"""The operator entrypoint: ``python -m gallery_operator``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import kopf

from gallery_operator import handlers, logs
from gallery_operator.config import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gallery-operator", description="The GalleryDownload operator.")
    parser.add_argument("--log-format", choices=["json", "text"], default="json")
    parser.add_argument("--verbose", action="store_true")
    options = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    logs.configure(logging.DEBUG if options.verbose else logging.INFO, options.log_format == "json")
    namespaces = list(settings.namespaces)
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=True,
            memo=handlers.Memo(settings),
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
