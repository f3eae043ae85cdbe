"""Layer 1: mergeable profiles, the drift engine and its Dask scale-out. Imports only helpers.core."""
