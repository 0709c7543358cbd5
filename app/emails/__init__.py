"""Completion e-mails: a short message through SMTP_URL when a job finishes."""
