"""Layer 6: the notebook runner, step cache, manifest, step context and one module per notebook step."""
