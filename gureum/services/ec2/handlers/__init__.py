"""EC2 action handlers; importing this package registers them all."""

from gureum.services.ec2.handlers import (  # noqa: F401
    addresses,
    attributes,
    default_vpc,
    dhcp_options,
    images,
    instance_types,
    instances,
    keypairs,
    launch_templates,
    lifecycle,
    metadata,
    prefix_lists,
    regions,
    routing,
    security_group_rules,
    security_groups,
    snapshots,
    tags,
    volumes,
    vpcs,
)
