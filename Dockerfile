# syntax=docker/dockerfile:1.7
# One image for every process of the distributed mode; the command picks the role:
#   api     uvicorn app.main:create_app --factory --workers N   (the default CMD)
#   worker  celery -A celery_worker worker
#   beat    celery -A celery_worker beat
#   migrate scripts/prestart.sh   (wait for PostgreSQL, alembic upgrade head)
# See docker-compose.yml for the whole stack.

ARG PYTHON_VERSION=3.11

# --- build: a virtualenv with the dependencies, then the project ---------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    VIRTUAL_ENV=/opt/venv
RUN pip install "uv==0.13.9" && uv venv "$VIRTUAL_ENV"
WORKDIR /src
# Dependencies only (from pyproject.toml): this layer is rebuilt when they change,
# not when the code does.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python "$VIRTUAL_ENV/bin/python" -r pyproject.toml

# --- runtime: slim, non-root, the code run from /app -----------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    API_WORKERS=2 \
    PORT=8000
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=app:app alembic.ini celery_worker.py ./
COPY --chown=app:app alembic ./alembic
COPY --chown=app:app scripts/prestart.sh ./scripts/prestart.sh
COPY --chown=app:app app ./app
RUN mkdir -p /app/var /tmp/prometheus && chown app:app /app/var /tmp/prometheus
USER 10001:10001
EXPOSE 8000 9808
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health\", timeout=2)"]
# exec form through sh so that API_WORKERS/PORT expand; exec hands PID 1 to uvicorn,
# which then receives SIGTERM and drains in-flight requests.
CMD ["sh", "-c", "exec python -m app.ops.serve app.main:create_app --factory --host 0.0.0.0 --port \"$PORT\" --workers \"$API_WORKERS\" --timeout-graceful-shutdown 30"]
