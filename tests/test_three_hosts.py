"""Three hosts on one machine (issue #13): the control host (gureum-1a) and two joined
hosts in gureum-1b, each a netns with its own agent process and data directory on a /30 of
its own, routed through the machine (never beyond it: every link has a blackhole route
under its own). An Auto Scaling group of two web servers spreads over the two joined
hosts behind a load balancer on the control host; one joined host dies (agent killed,
link cut from inside it): its member is replaced on the other joined host of the same
zone and the load balancer serves from both again; the dead host comes back and its
stale instance is swept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import get, sh, wait_for, wait_state
from test_host_loss import web_group
from test_hosts_join import Cluster, MoreHost, running_cluster

from gureum.config import Config
from gureum.store import models
from gureum.store.db import Store


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    yield from running_cluster("198.18.86.0/30", "198.18.86.1", "198.18.86.2", more=(
        MoreHost("198.18.87.0/30", "198.18.87.1", "198.18.87.2", "host3"),))


def _hosts_of(cluster: Cluster, instance_ids: list[str]) -> dict[str, str | None]:
    store = Store(Config(data_dir=cluster.server.data_dir).store_url)
    try:
        with store.read() as s:
            return {i: s.get(models.Instance, i).host_id for i in instance_ids}
    finally:
        store.engine.dispose()


def test_a_dead_hosts_member_is_replaced_on_the_other_host_of_its_zone(
        cluster: Cluster) -> None:
    _, host3 = cluster.more[0]
    hosts = cluster.hosts()
    assert {hosts["host2"]["zone"], hosts["host3"]["zone"]} == {"gureum-1b"}
    group = web_group(cluster, size=2, zones=("gureum-1b",))
    prefix2 = Config(data_dir=cluster.agent.data_dir).prefix

    def spread_and_serving() -> dict[str, str | None] | None:
        members = group.members()
        if len(members) != 2 or set(members) != group.healthy():
            return None
        placed = _hosts_of(cluster, list(members))
        return placed if set(placed.values()) == {cluster.agent.host_id, host3.host_id} \
            else None

    try:
        assert wait_for(spread_and_serving, 120), (group.members(), group.healthy())
        placed = spread_and_serving()
        assert placed is not None
        doomed = next(i for i, h in placed.items() if h == cluster.agent.host_id)
        names = {"ip-" + wait_state(group.ec2, i, "running")["PrivateIpAddress"].replace(
            ".", "-") for i in placed}
        answers = {get(group.url).split()[0] for _ in range(10)}
        assert answers == names, (answers, names)  # both hosts serve through it

        group.kill_joined_host(0)
        assert wait_for(lambda: cluster.hosts()["host2"]["state"] == "lost", 30)

        def replaced() -> bool:
            members = group.members()
            if doomed in members or len(members) != 2 or set(members) != group.healthy():
                return False
            return set(_hosts_of(cluster, list(members)).values()) == {host3.host_id}

        assert wait_for(replaced, 90, interval=0.2), (group.members(), group.healthy())
        wait_state(group.ec2, doomed, "terminated")
        assert get(group.url).startswith("ip-")

        group.revive_joined_host(0)
        assert wait_for(lambda: cluster.hosts()["host2"]["state"] == "active", 30)
        assert wait_for(lambda: f"{prefix2}-{doomed}" not in sh("ip", "netns", "list").stdout,
                        30)
    finally:
        group.remove()
