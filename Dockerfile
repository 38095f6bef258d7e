# gallery-operator: one image for the operator (python -m gallery_operator) and the worker
# (python -m gallery_operator.worker). Expected size: about 405 MB (python:3.13-slim ~125 MB, ffmpeg and its
# libraries ~90 MB, the Python environment ~190 MB, of which the `deno` binary that solves YouTube's JavaScript
# challenges is 92 MB and yt-dlp's other default extras 14 MB; docs/real-sites.md). deno comes from its PyPI wheel
# into /app/.venv/bin with the locked environment: nothing here fetches it. The base is pinned to a patch release;
# bump it on purpose.

# --- build: resolve the locked environment with uv ---------------------------------------------------------
ARG PYTHON_IMAGE=python:3.13.5-slim-bookworm
FROM ${PYTHON_IMAGE} AS build
RUN pip install --no-cache-dir uv==0.13.8
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (cached while only the code changes), exactly as uv.lock pins them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY operator/ operator/
RUN uv sync --frozen --no-dev --no-editable

# --- runtime -----------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install --yes --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# A fixed non-root user with an entry in /etc/passwd: code that looks the user up (kopf names its peering identity
# after it) fails without one. The Job and the chart also set runAsUser 65532 and a read-only root filesystem.
RUN groupadd --gid 65532 gallery \
    && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin gallery
USER 65532:65532
EXPOSE 8080 8081 8082
ENTRYPOINT ["python", "-m"]
CMD ["gallery_operator"]
