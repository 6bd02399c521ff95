"""The DNS zones load balancers' names live in (import-light: the deploy CLI reads them)."""

DNS_ZONE = "elb.gureum.internal"  # NAME-ID.<region>.elb.gureum.internal
# Host names under the apps zone (`gureum deploy` makes APP.<region>.apps.gureum.internal)
# resolve to the internet-facing load balancer whose listener rule names them.
APPS_ZONE = "apps.gureum.internal"
