"""Model specs, vector hashes, commitments and the integer reference executor (docs/models.md)."""
