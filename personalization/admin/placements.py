"""Admin screens for placements."""
