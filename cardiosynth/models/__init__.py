"""Models: one readable file per model; each model's config is a dataclass saved beside its weights."""
