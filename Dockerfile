# syntax=docker/dockerfile:1

# GOV.UK Frontend for the pages, from npm at the version package-lock.json pins; only its built files
# (dist/govuk) reach the image, and Node itself does not.
FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system app && useradd --system --gid app --home-dir /app --shell /usr/sbin/nologin app
WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY states/ states/
COPY dispute_service/ dispute_service/
COPY api/ api/
COPY notifications/ notifications/
RUN pip install .

# Read by api/web/__init__.py: the stylesheet, script, fonts and images the pages link to.
COPY --from=assets /build/node_modules/govuk-frontend/dist/govuk/ /app/assets/govuk/

RUN mkdir -p /data && chown app:app /data
USER app

ENV DISPUTES_DATABASE_URL=sqlite:////data/disputes.db \
    DISPUTES_LOG_FORMAT=json \
    DISPUTES_ASSETS_DIR=/app/assets/govuk
EXPOSE 8000
VOLUME ["/data"]

HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"

# Migrate, then serve. Several replicas on PostgreSQL: run `dispute-service migrate` once as a release step
# and start the replicas with `serve --no-migrate`.
# `serve` without --demo is strict: the image holds no secret, so the container refuses to start, naming each
# setting, until DISPUTES_JWT_SECRET (or the JWKS settings), DISPUTES_LINK_SECRET, DISPUTES_AUDIT_KEY, an
# https DISPUTES_PUBLIC_BASE_URL and a TLS mail server are given (README, "Modes"). Never add --demo here.
CMD ["sh", "-c", "dispute-service migrate && exec dispute-service serve --host 0.0.0.0 --port 8000 --no-migrate"]
