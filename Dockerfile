# synthgrad dashboard server.
#   docker build -t synthgrad .
#   docker run -p 8000:8000 -v synthgrad-data:/data synthgrad
# With MNIST in the form and the paper's preset: mount a folder holding mnist/ (the four
# IDX files) at /datasets, e.g. -v "$PWD/datasets:/datasets:ro".
# Configuration: SYNTHGRAD_* environment variables (README, "Deploy").
#
# BASE: any Debian-like image with python3 (>= 3.11) and its venv module.
# PIP_OPTIONS: extra pip options for both stages, e.g. an offline build from
# wheels placed in ./wheels: --build-arg PIP_OPTIONS="--no-index --find-links /src/wheels"
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
ARG PIP_OPTIONS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . .
# The project and every dependency as wheels, so the runtime stage needs no network.
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel ${PIP_OPTIONS} --wheel-dir /wheels /src

FROM ${BASE}
ENV PATH=/opt/synthgrad/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SYNTHGRAD_HOST=0.0.0.0 \
    SYNTHGRAD_PORT=8000 \
    SYNTHGRAD_DB=/data/synthgrad.sqlite3 \
    SYNTHGRAD_DATA_DIR=/datasets \
    SYNTHGRAD_SHUTDOWN_TIMEOUT=5
COPY --from=build /wheels /tmp/wheels
RUN python3 -m venv /opt/synthgrad \
    && /opt/synthgrad/bin/pip install --no-index --find-links /tmp/wheels synthgrad \
    && rm -rf /tmp/wheels \
    && mkdir /data /datasets \
    && chown 10001:10001 /data
# A numeric user: no root inside the container, and no passwd entry needed.
USER 10001:10001
VOLUME ["/data", "/datasets"]
EXPOSE 8000
# Python is all the health check needs (no curl in the image).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('SYNTHGRAD_PORT', '8000'), timeout=4)"]
# One uvicorn worker (the run manager lives in the process); on SIGTERM it drains
# for SYNTHGRAD_SHUTDOWN_TIMEOUT seconds, marks unfinished runs interrupted, exits.
CMD ["synthgrad", "serve"]
