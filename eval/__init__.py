"""Evaluation: metrics, the comparison runner, error maps and reports."""
