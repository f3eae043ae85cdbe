"""Layer 2: reading tables and windows, investigate, train and evaluation metrics."""
