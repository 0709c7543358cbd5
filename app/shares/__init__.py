"""Public, revocable links to a completed job's results (``/s/{token}``)."""
