"""Calico v3 resources: shapes, defaults, validation, store keys and the selector language."""
