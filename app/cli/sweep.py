"""``python -m app.cli sweep``: the command's options only. Its work (the engine,
the dataset, the sweep domain) is imported when it runs, so ``--help`` stays light
(``app.cli.sweep_impl``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def run(
    request_file: Annotated[
        Path, typer.Argument(help="JSON file with a POST /v1/sweeps body.")
    ],
    top: Annotated[int, typer.Option(help="Rows to print, best first.")] = 10,
    tier: Annotated[
        str, typer.Option(help="Combination cap of this tier.")
    ] = "enterprise",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object.")
    ] = False,
) -> None:
    """Run a sweep on the bundled data (or the base's dataset) and print the best rows
    and the overfitting diagnostics."""
    from app.cli import sweep_impl  # noqa: PLC0415 - heavy: only when the command runs

    sweep_impl.run(request_file, top=top, tier=tier, as_json=as_json)
