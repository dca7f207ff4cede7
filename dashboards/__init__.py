"""Rendering from published/ only: funder dashboard, impact report, compliance report."""
