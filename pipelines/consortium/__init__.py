"""Consortium assets: the protected release (tables + manifest) and the three HTML reports."""
