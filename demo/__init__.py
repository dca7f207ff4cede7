"""The seeded synthetic consortium generator."""
