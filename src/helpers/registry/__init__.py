"""Layer 4: the MLflow store, lineage tags, the release lock, gates, releases, approval, rollback, status."""
