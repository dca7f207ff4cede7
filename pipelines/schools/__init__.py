"""Per-school assets: intake, minimization, pseudonymization into staging; checks; the landing sensor."""
