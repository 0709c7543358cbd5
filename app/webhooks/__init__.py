"""Webhooks: endpoints that hear about a user's jobs, signed Standard Webhooks
deliveries with retries, and the SSRF guard in front of every outgoing request."""
