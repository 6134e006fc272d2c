"""Helios: a log and event collection mesh (see README.md and ../shared/DESIGN.md)."""

__version__ = "0.1.0"
