"""Node-side inference: the runtime entry point, the language model, equivariant encryption (docs/models.md)."""
