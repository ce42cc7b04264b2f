"""Commissary: an open-source backend for ordering food."""

__version__ = "0.1.0"
