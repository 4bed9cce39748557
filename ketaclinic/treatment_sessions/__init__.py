"""Treatment sessions: one chair, one patient, from check-in to the signed note (issue 6)."""
