"""CloudWatch (metrics)."""
