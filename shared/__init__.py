"""Kaixu Gateway: the library every function imports."""
