"""The API docs' vendored bundles (scripts/vendor_docs.sh): the files are the ones
recorded, at the versions the script pins, and the doc pages point at them."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from app.api import docs

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "app" / "web" / "vendor"
SCRIPT = (REPO / "scripts" / "vendor_docs.sh").read_text()
BUNDLES = {"swagger-ui": "SWAGGER_UI_VERSION", "redoc": "REDOC_VERSION"}


@pytest.mark.parametrize("folder", sorted(BUNDLES))
def test_files_match_their_recorded_checksums(folder: str) -> None:
    root = VENDOR / folder
    recorded = {}
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name] = digest
    present = {p.name for p in root.iterdir() if p.name != "SHA256SUMS"}
    assert set(recorded) == present, "SHA256SUMS must list exactly the folder's files"
    for name, digest in recorded.items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize(("folder", "variable"), sorted(BUNDLES.items()))
def test_version_is_the_one_the_script_pins(folder: str, variable: str) -> None:
    match = re.search(rf'^{variable}="([^"]+)"$', SCRIPT, re.MULTILINE)
    assert match, f"{variable} not set in scripts/vendor_docs.sh"
    assert (VENDOR / folder / "VERSION").read_text().strip() == match.group(1)


def test_doc_pages_use_the_vendored_files() -> None:
    for url in (docs.SWAGGER_JS_URL, docs.SWAGGER_CSS_URL, docs.REDOC_JS_URL):
        assert url.startswith("/static/"), url
        # /static is the URL of app/web (app.main mounts it there)
        assert (REPO / "app" / "web" / url.removeprefix("/static/")).is_file(), url
