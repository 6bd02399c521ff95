"""Data made by older gureum versions is adopted at start-up (no server, no host objects)."""

from __future__ import annotations

from pathlib import Path

from gureum.cloud import Cloud
from gureum.config import Config
from gureum.services.ec2 import ids, networks
from gureum.store import models


def test_instances_from_before_stored_vpcs_get_their_default_network(tmp_path: Path):
    cfg = Config(data_dir=tmp_path)
    cloud = Cloud(cfg, with_agent=False)
    account, _, _ = cloud.create_account("old")
    # What session 1 wrote: an instance naming its account's default VPC and subnet by
    # derived id, with no rows behind them.
    with cloud.store.write() as s:
        s.add(models.Reservation(reservation_id="r-0123456789abcdef0", account_id=account))
        s.flush()
        s.add(models.Instance(
            instance_id="i-0123456789abcdef0", account_id=account,
            reservation_id="r-0123456789abcdef0", image_id="ami-0123456789abcdef0",
            instance_type="t3.micro", state="running", desired_state="running", slot=1,
            private_ip="172.31.0.4", vpc_id=networks.default_vpc_id(account),
            subnet_id=networks.default_subnet_id(account, cfg.region + "a"),
            availability_zone=cfg.region + "a",
            security_group_ids=[ids.derived("sg", account, "default")]))
    Cloud(cfg, with_agent=False)  # the next start
    with cloud.store.read() as s:
        vpc = s.get(models.Vpc, networks.default_vpc_id(account))
        subnet = s.get(models.Subnet, networks.default_subnet_id(account, cfg.region + "a"))
        assert vpc is not None and vpc.is_default and vpc.enable_dns_hostnames
        assert subnet is not None and subnet.cidr == cfg.subnet_cidr
        assert subnet.subnet_id in networks.public_subnet_ids(s)
        assert s.get(models.SecurityGroup, ids.derived("sg", account, "default")) is not None
