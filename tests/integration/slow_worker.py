"""``celery -A tests.integration.slow_worker worker|beat``: exactly what
``celery_worker`` runs, with the engine slowed down by
``TEST_ENGINE_CHUNK_DELAY_SECONDS`` (see ``slow_engine``; the prefork children
inherit the wrapping)."""

from __future__ import annotations

import celery_worker
from tests.integration import slow_engine

slow_engine.install()
app = celery_worker.app
