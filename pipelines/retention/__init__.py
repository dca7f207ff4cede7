"""Retention enforcement: a daily schedule (assets.py) and the plain run behind it and the CLI (run.py)."""
