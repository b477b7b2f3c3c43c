"""Prefect flows: thin wiring over `components`."""
