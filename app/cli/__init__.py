"""Command-line front end: ``python -m app.cli --help``."""
