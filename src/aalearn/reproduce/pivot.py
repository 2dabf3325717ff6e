"""Reproduction module (filled in by its issue's work)."""
