"""Data-sharing agreements: the ODCS model, loading a folder of contracts, and coverage questions."""
