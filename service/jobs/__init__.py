"""Asynchronous jobs: a SQLite store and the worker that runs them."""
