"""Asynchronous jobs: the store (SQLite or PostgreSQL), the workers that run them, leases and webhooks."""
