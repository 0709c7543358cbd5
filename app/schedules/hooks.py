"""Schedules fire from every sweep (``app.jobs.registry.on_sweep``): Celery beat's
``jobs.sweep`` in distributed mode, the sweeper loop of the API in embedded mode."""

from __future__ import annotations

from app.jobs import registry
from app.schedules.firing import fire_due

registry.on_sweep(fire_due)
