"""Fontus."""
