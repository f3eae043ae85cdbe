"""Layer 2: reading tables, time windows and captured traffic (the capture store's layout and
readers), investigate, estimators and their feature pipelines, splits and evaluation, metrics."""
