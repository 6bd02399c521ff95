"""Elastic Load Balancing v2 (application and network load balancers)."""
