"""The instance type catalogue through the API: DescribeInstanceTypes (with the fields
tools read) and DescribeInstanceTypeOfferings (what this host can hold)."""

from __future__ import annotations

from typing import Any

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import filters
from gureum.services.ec2.handlers import common
from gureum.services.ec2.instance_types import CATALOGUE, InstanceType, fits


def offered(ctx: RequestContext, t: InstanceType) -> bool:
    c = ctx.cloud.config
    return fits(t, c.host_vcpus, c.host_memory_mib, c.cpu_overcommit, c.memory_overcommit)


@action("ec2", "DescribeInstanceTypes")
def describe_instance_types(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    wanted = p.get("InstanceTypes") or []
    for name in wanted:
        if name not in CATALOGUE:
            raise exc.InvalidInstanceType(f"The following supplied instance types do not exist: [{name}]")
    flt = filters.validate(p.get("Filters"), {
        "instance-type", "vcpu-info.default-vcpus", "memory-info.size-in-mib",
        "current-generation", "burstable-performance-supported",
        "processor-info.supported-architecture"})
    out = []
    for t in CATALOGUE.values():
        if wanted and t.name not in wanted:
            continue
        fields = {"instance-type": t.name, "vcpu-info.default-vcpus": t.vcpus,
                  "memory-info.size-in-mib": t.memory_mib,
                  "current-generation": t.name.split(".")[0] not in ("t2", "m5", "c5", "r5"),
                  "burstable-performance-supported": t.burstable,
                  "processor-info.supported-architecture": "x86_64"}
        if not filters.match(flt, fields, {}):
            continue
        family = t.name.split(".")[0]
        out.append({
            "InstanceType": t.name, "CurrentGeneration": family not in ("t2", "m5", "c5", "r5"),
            "FreeTierEligible": t.name in ("t2.micro", "t3.micro"),
            "SupportedUsageClasses": ["on-demand"], "SupportedRootDeviceTypes": ["ebs"],
            "SupportedVirtualizationTypes": ["hvm"], "BareMetal": False, "Hypervisor": "nitro",
            "ProcessorInfo": {"SupportedArchitectures": ["x86_64"],
                              "Manufacturer": "AMD" if family == "t3a" else "Intel"},
            "VCpuInfo": {"DefaultVCpus": t.vcpus, "DefaultCores": t.vcpus,
                         "DefaultThreadsPerCore": 1},
            "MemoryInfo": {"SizeInMiB": t.memory_mib},
            "InstanceStorageSupported": False,
            "EbsInfo": {"EbsOptimizedSupport": "default", "EncryptionSupport": "supported",
                        "NvmeSupport": "required"},
            "NetworkInfo": {"NetworkPerformance": "Up to 5 Gigabit", "MaximumNetworkInterfaces": t.max_interfaces,
                            "Ipv4AddressesPerInterface": t.addresses_per_interface, "Ipv6Supported": False,
                            "EnaSupport": "required"},
            "PlacementGroupInfo": {"SupportedStrategies": []},
            "HibernationSupported": False, "BurstablePerformanceSupported": t.burstable,
            "DedicatedHostsSupported": False, "AutoRecoverySupported": True,
            "SupportedBootModes": ["legacy-bios", "uefi"],
        })
    chunk, token = common.page(out, p.get("MaxResults"), p.get("NextToken"), lo=5, hi=100)
    return {"InstanceTypes": chunk, "NextToken": token}


LOCATION_TYPES = ("region", "availability-zone", "availability-zone-id")


@action("ec2", "DescribeInstanceTypeOfferings")
def describe_instance_type_offerings(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    kind = p.get("LocationType") or "region"
    if kind not in LOCATION_TYPES:
        raise exc.InvalidParameterValue(f"Invalid value '{kind[:64]}' for LocationType")
    location = {"region": ctx.region, "availability-zone": ctx.cloud.availability_zone,
                "availability-zone-id": ctx.region + "-az1"}[kind]
    flt = filters.validate(p.get("Filters"), {"instance-type", "location"})
    out = [{"InstanceType": t.name, "LocationType": kind, "Location": location}
           for t in CATALOGUE.values() if offered(ctx, t)
           and filters.match(flt, {"instance-type": t.name, "location": location}, {})]
    chunk, token = common.page(out, p.get("MaxResults"), p.get("NextToken"), lo=5, hi=1000)
    return {"InstanceTypeOfferings": chunk, "NextToken": token}
