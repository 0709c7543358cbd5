"""Building and sending the completion e-mail (stdlib ``smtplib``)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from app.core.config import Settings
from app.jobs.registry import JobEvent

TIMEOUT_SECONDS = 10
SHOWN_METRICS = (
    ("total_return", "Total return", True),
    ("cagr", "CAGR", True),
    ("sharpe_ratio", "Sharpe ratio", False),
    ("max_drawdown", "Max drawdown", True),
)


def compose(event: JobEvent, *, label: str, link: str) -> tuple[str, str]:
    """(subject, plain-text body) of the message for ``event``."""
    title = event.name or f"{label} {str(event.job_id)[:8]}"
    subject = f"{label} {event.status}: {title}"
    lines = [f'Your {label.lower()} "{title}" has {event.status}.', ""]
    if event.error:
        lines += [f"Error: {event.error}", ""]
    metrics = event.metrics or {}
    for key, name, percent in SHOWN_METRICS:
        value = metrics.get(key)
        if isinstance(value, int | float):
            lines.append(f"{name}: {value:.2%}" if percent else f"{name}: {value:.2f}")
    lines += ["", f"Details: {link}", ""]
    return subject, "\n".join(lines)


def send(settings: Settings, *, to: str, subject: str, body: str) -> None:
    """Send one message through ``SMTP_URL`` (``smtp://`` with STARTTLS when the
    server offers it, ``smtps://`` for implicit TLS; credentials from the URL)."""
    if not settings.smtp_url:
        raise RuntimeError("SMTP_URL is not set")
    url = urlsplit(settings.smtp_url)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.smtp_from, to, subject
    message.set_content(body)
    host = url.hostname or "localhost"
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if url.scheme == "smtps":
        client = smtplib.SMTP_SSL(
            host, url.port or 465, timeout=TIMEOUT_SECONDS, context=context
        )
    else:
        client = smtplib.SMTP(host, url.port or 25, timeout=TIMEOUT_SECONDS)
    with client:
        client.ehlo()
        if url.scheme != "smtps" and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)
