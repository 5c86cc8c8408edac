"""Grades: automatic upgrades over measured figures, operator grants, recorded changes."""
