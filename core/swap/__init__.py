"""Swap model families, one small class each, behind the Swapper protocol (base.py)."""
