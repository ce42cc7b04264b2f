# syntax=docker/dockerfile:1

# Commissary's container image: `commissary serve` by default; the same image
# runs `commissary worker`, `commissary scheduler` and `commissary db ...`.

ARG PYTHON_IMAGE=python:3.12-slim

# ---------------------------------------------------------------------------
# builder: resolve the locked dependencies and the project into /app/.venv
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install uv

WORKDIR /app

# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-project

# Then Commissary itself, installed as a regular (non-editable) package.
COPY src/ ./src/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# ---------------------------------------------------------------------------
# dashboard-assets: the dashboard's chart library, as package-lock.json pins it
# ---------------------------------------------------------------------------
FROM node:22-slim AS dashboard-assets

WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

# ---------------------------------------------------------------------------
# runtime: the virtual environment only, run by an unprivileged user
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

RUN groupadd --system --gid 10001 commissary \
    && useradd --system --uid 10001 --gid commissary \
        --home-dir /app --no-create-home --shell /usr/sbin/nologin commissary \
    && mkdir -p /app /srv/media \
    && chown commissary:commissary /app /srv/media

# The environment stays owned by root: the running service cannot modify its own code.
COPY --from=builder /app/.venv /app/.venv
COPY --from=dashboard-assets /assets/node_modules/chart.js/dist /app/node_modules/chart.js/dist

ENV PATH="/app/.venv/bin:${PATH}" \
    VIRTUAL_ENV=/app/.venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    LOG_FORMAT=json \
    DASHBOARD_NODE_MODULES=/app/node_modules

WORKDIR /app
USER commissary:commissary

EXPOSE 8000

# Liveness of `commissary serve`; services of this image that serve no HTTP
# (worker, scheduler, one-off commands) turn it off (see compose.yaml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

# Migrations are applied by `commissary db init` (the `prestart` service of
# compose.yaml) before the API starts, not by each server process.
CMD ["commissary", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-migrate"]
