# syntax=docker/dockerfile:1
# Image of the approvals engine: one image, three roles chosen by the command
#   approvals worker   (default) Temporal worker
#   approvals api      HTTP API (set API_HOST=0.0.0.0 to be reachable from outside the container)
#   approvals migrate  applies the SQL migrations, then exits
# Build: docker build -t alashankou-approvals .      Deployment: see docs/deploy.md

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: install the project and its pinned dependency ranges into a virtualenv -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# .dockerignore keeps .venv, .git, tests and local state out of this copy.
COPY . .
# Runtime dependencies only: no [dev] extra. All dependencies ship wheels for linux x86_64/aarch64 on
# CPython 3.11, so no compiler is needed in this stage.
RUN pip install --upgrade pip \
 && pip install . \
 && pip check \
 && approvals --help >/dev/null

# ---- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="alashankou-approvals" \
      org.opencontainers.image.description="Event-sourced approvals engine (Temporal + PostgreSQL)"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json \
    API_HOST=0.0.0.0 \
    API_PORT=8000
# Official documents: WeasyPrint lays them out with Pango, in Noto CJK (GB/T 9704-2012's 仿宋 falls back to
# Noto Serif CJK SC: Debian packages no simplified FangSong).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*
# An unprivileged user with a fixed uid, so mounted files (CALENDAR_PATH, TLS keys) can be granted to it.
RUN groupadd --system --gid 10001 approvals \
 && useradd --system --uid 10001 --gid approvals --home-dir /home/approvals --create-home \
      --shell /usr/sbin/nologin approvals
COPY --from=build /opt/venv /opt/venv
WORKDIR /home/approvals
USER approvals:approvals
EXPOSE 8000
# No HEALTHCHECK here: the same image runs the worker (no HTTP port) and the API; docker-compose.yml
# gives the api service a check of GET /health.
CMD ["approvals", "worker"]
