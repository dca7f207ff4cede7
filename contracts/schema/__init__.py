"""The JSON Schema of an impact data-sharing contract, shipped as package data (editors validate against it)."""
