"""EC2 Auto Scaling (API 2011-01-01, query protocol)."""
