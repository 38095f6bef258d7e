"""Everything a worker pod is given, read once at start: the one module of the worker that reads the environment.

The operator's Job (gallery_operator/jobs.py) hands a pod its configuration and its Secrets' values in environment
variables and its files in mounts; tests and benchmarks move the mounts with the ``GALLERY_WORKER_*`` overrides
below. ``read()`` takes all of it into one frozen ``Inputs``, and the rest of the worker is handed that object (or
the part of it it needs), never the environment. Libraries keep their own conventions: boto3 reads its ``AWS_*``
credentials, requests and urllib their proxy variables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from gallery_operator.worker.options import Credentials

CONFIG_ENV = "GALLERY_WORKER_CONFIG"
"""workerconfig.CONFIG_ENV (a test holds them equal). The entrypoint reads the configuration before anything heavy
is imported, so this module imports at its top only a few small modules of the standard library (tuples rather
than dataclasses, whose import brings `inspect`; urllib when it is asked)."""

LOG_FORMAT_ENV = "GALLERY_WORKER_LOG_FORMAT"
"""`json` (the default, what a pod logs) or anything else for plain text (tests and benchmarks)."""
TERMINATION_LOG_ENV = "GALLERY_WORKER_TERMINATION_LOG"
"""Where the final report goes; the kubelet's `/dev/termination-log` unless moved (tests)."""
SCRATCH_ENV = "GALLERY_WORKER_SCRATCH"
"""The scratch folder (an emptyDir at SCRATCH_MOUNT in a pod)."""
COOKIES_DIR_ENV = "GALLERY_WORKER_COOKIES_DIR"
"""The folder of the cookies Secret's file (COOKIES_MOUNT in a pod)."""
TOKEN_DIR_ENV = "GALLERY_WORKER_TOKEN_DIR"  # noqa: S105 - a variable's name, not a secret
"""The folder of the projected report token (TOKEN_MOUNT in a pod; moved by tests that read the reports)."""
S3_SECRET_ENVS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
"""The S3 credentials a pod may hold (boto3 reads them itself; they are read here only to be redacted; the key id
is no secret, but nothing is lost by hiding it)."""
S3_ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3"
S3_REGION_ENV = "AWS_DEFAULT_REGION"
CA_BUNDLE_ENVS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
"""requests' own CA bundle variables, in its order."""


class RequestsEnvironment(NamedTuple):
    """What requests would take from the environment of this process."""

    shaped: bool = False
    """Whether it changes more than the CA bundle: proxy variables or a netrc file."""
    ca_bundle: str | None = None


class Inputs(NamedTuple):
    """One pod's inputs, as they were when it started."""

    config: str | None
    """The worker configuration's JSON (GALLERY_WORKER_CONFIG), validated by whoever runs it."""
    log_json: bool
    termination_log: Path
    scratch: Path
    cookies_file: Path
    """The cookies Secret's file (read-only; it may be absent)."""
    report_token: Path
    """The projected token the reporter presents to the operator (read at each post: the kubelet renews it)."""
    username: str | None = None
    password: str | None = None
    tokens: tuple[tuple[str, str], ...] = ()
    """(spec.auth.tokens field, value) of the site tokens the pod was given."""
    s3_secrets: tuple[str, ...] = ()
    s3_endpoint: str | None = None
    s3_region: str | None = None
    requests: RequestsEnvironment = RequestsEnvironment()
    program_environment: tuple[tuple[str, str], ...] = ()
    """The variables of programs.KEPT_ENV_PREFIXES, which the program wall holds every started program to."""

    def credentials(self, cookies_file: Path | None) -> Credentials:
        """The engines' credentials: ``cookies_file`` (the run's private copy) and the Secrets' values."""
        from gallery_operator.worker.options import Credentials  # noqa: PLC0415 - see CONFIG_ENV

        return Credentials(
            cookies_file=cookies_file, username=self.username, password=self.password, tokens=self.tokens
        )

    def secret_values(self) -> list[str]:
        """The values this pod must never show, apart from its cookies: password, site tokens and S3 keys."""
        return [value for value in (self.password, *(value for _, value in self.tokens), *self.s3_secrets) if value]


def _requests_environment() -> RequestsEnvironment:
    import urllib.request  # noqa: PLC0415 - see CONFIG_ENV

    # urllib's getproxies reads the proxy variables as requests does. os.path.expanduser, as requests uses: it
    # leaves "~" alone when there is no home (a pod's arbitrary user), where Path.expanduser raises.
    netrc = any(Path(os.path.expanduser(f"~/{name}")).exists() for name in (".netrc", "_netrc"))  # noqa: PTH111
    shaped = bool(urllib.request.getproxies() or os.environ.get("NETRC") or netrc)
    bundle = next((value for name in CA_BUNDLE_ENVS if (value := os.environ.get(name))), None)
    return RequestsEnvironment(shaped=shaped, ca_bundle=bundle)


def config_json() -> str | None:
    """The worker configuration's JSON, for the entrypoint's first steps (``read`` takes it back)."""
    return os.environ.get(CONFIG_ENV)


def read(config: str | None = None) -> Inputs:
    """This process's inputs, from its environment and the files it names; ``config`` when the caller read it
    already (``config_json``)."""
    from gallery_operator.worker.programs import KEPT_ENV_PREFIXES  # noqa: PLC0415 - see CONFIG_ENV
    from gallery_operator.workerconfig import (  # noqa: PLC0415 - see CONFIG_ENV
        COOKIES_FILE,
        COOKIES_MOUNT,
        PASSWORD_ENV,
        SCRATCH_MOUNT,
        TOKEN_ENVS,
        TOKEN_FILE,
        TOKEN_MOUNT,
        USERNAME_ENV,
    )

    environ = os.environ
    tokens = tuple((name, value) for name, env in TOKEN_ENVS.items() if (value := environ.get(env)))
    return Inputs(
        config=config if config is not None else environ.get(CONFIG_ENV),
        log_json=environ.get(LOG_FORMAT_ENV, "json") == "json",
        termination_log=Path(environ.get(TERMINATION_LOG_ENV, "/dev/termination-log")),
        scratch=Path(environ.get(SCRATCH_ENV, SCRATCH_MOUNT)),
        cookies_file=Path(environ.get(COOKIES_DIR_ENV, COOKIES_MOUNT)) / COOKIES_FILE,
        report_token=Path(environ.get(TOKEN_DIR_ENV, TOKEN_MOUNT)) / TOKEN_FILE,
        username=environ.get(USERNAME_ENV),
        password=environ.get(PASSWORD_ENV),
        tokens=tokens,
        s3_secrets=tuple(value for name in S3_SECRET_ENVS if (value := environ.get(name))),
        s3_endpoint=environ.get(S3_ENDPOINT_ENV),
        s3_region=environ.get(S3_REGION_ENV),
        requests=_requests_environment(),
        program_environment=tuple(sorted((k, v) for k, v in environ.items() if k.startswith(KEPT_ENV_PREFIXES))),
    )
