"""Pure data work: readers to canonical frames, metrics, effect sizes, publication tables."""
