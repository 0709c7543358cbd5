"""Scheduled runs of templates: cron in a time zone, fired by the sweep."""
