"""Saved submissions: a named configuration of a job kind, run on demand."""
