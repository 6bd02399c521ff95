"""The load balancer data plane: HAProxy in each load balancer's own netns."""
