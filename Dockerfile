# syntax=docker/dockerfile:1.7
# One image for every process of the distributed mode; the command picks the role:
#   api     uvicorn app.main:create_app --factory --workers N   (the default CMD)
#   worker  celery -A celery_worker worker
#   beat    celery -A celery_worker beat
#   migrate scripts/prestart.sh   (wait for PostgreSQL, alembic upgrade head)
# See docker-compose.yml for the whole stack.

ARG PYTHON_VERSION=3.11

# --- build: a virtualenv with exactly the locked dependencies --------------------------
# requirements-runtime.lock: every package pinned with its hashes (pip refuses anything
# else), the same versions as requirements.lock minus the dev tools. The project itself
# is not installed: the runtime stage runs the code from /app. scripts/check_image_lock.sh
# compares the built image's `pip freeze` with the lock.
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv
RUN python -m venv "$VIRTUAL_ENV"
WORKDIR /src
# Dependencies only: this layer is rebuilt when the lock changes, not the code.
COPY requirements-runtime.lock ./
RUN "$VIRTUAL_ENV/bin/pip" install --no-deps --require-hashes --only-binary=:all: \
        -r requirements-runtime.lock \
    && "$VIRTUAL_ENV/bin/python" -m compileall -q "$VIRTUAL_ENV/lib"

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
# The code's bytecode, as the build stage did for the venv: PYTHONDONTWRITEBYTECODE
# stops processes writing it, so without this every process start (each API worker,
# each Celery child after a restart) compiles the whole app from source first; that
# was most of the API's cold start (issue 18).
RUN python -m compileall -q app alembic celery_worker.py
USER 10001:10001
# Compile the engine's numba kernels into their on-disk cache now (it is keyed by CPU:
# on another CPU model the first process recompiles, once, before forking workers).
RUN python -c "from app.engine import jit; print(f'numba kernels ready in {jit.warm_up():.1f} s')"
EXPOSE 8000 9808
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health\", timeout=2)"]
# exec form through sh so that API_WORKERS/PORT expand; exec hands PID 1 to uvicorn,
# which then receives SIGTERM and drains in-flight requests.
CMD ["sh", "-c", "exec python -m app.ops.serve app.main:create_app --factory --host 0.0.0.0 --port \"$PORT\" --workers \"$API_WORKERS\" --timeout-graceful-shutdown 30"]
