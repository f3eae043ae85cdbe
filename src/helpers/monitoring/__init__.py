"""Layer 5: monitoring captured traffic against the training baseline, and alerts."""
