"""Rootwalk: a recursive DNS resolver with caching."""

__version__ = "0.1.0"
