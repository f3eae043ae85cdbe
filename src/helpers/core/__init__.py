"""Layer 0: errors, atomic file helpers, the params model and the catalogue of names. Imports nothing above it."""
