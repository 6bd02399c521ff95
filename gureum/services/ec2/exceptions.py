"""EC2 error codes: one class per AWS code."""

from __future__ import annotations

from gureum.api.exceptions import (  # noqa: F401  (re-exported: handlers import from here)
    AuthFailure,
    DryRunOperation,
    InvalidParameter,
    InvalidParameterCombination,
    InvalidParameterValue,
    MissingParameter,
)
from gureum.errors import ApiError


class InvalidInstanceIDNotFound(ApiError):
    code = "InvalidInstanceID.NotFound"


class InvalidInstanceIDMalformed(ApiError):
    code = "InvalidInstanceID.Malformed"


class InvalidAMIIDNotFound(ApiError):
    code = "InvalidAMIID.NotFound"


class InvalidAMIIDMalformed(ApiError):
    code = "InvalidAMIID.Malformed"


class InvalidKeyPairNotFound(ApiError):
    code = "InvalidKeyPair.NotFound"


class InvalidKeyPairDuplicate(ApiError):
    code = "InvalidKeyPair.Duplicate"


class InvalidKeyFormat(ApiError):
    code = "InvalidKey.Format"


class IncorrectInstanceState(ApiError):
    code = "IncorrectInstanceState"


class UnsupportedOperation(ApiError):
    code = "UnsupportedOperation"


class OperationNotPermitted(ApiError):
    code = "OperationNotPermitted"


class InvalidInstanceType(ApiError):
    code = "InvalidInstanceType"


class InvalidSubnetIDNotFound(ApiError):
    code = "InvalidSubnetID.NotFound"


class InvalidGroupNotFound(ApiError):
    code = "InvalidGroup.NotFound"


class InvalidID(ApiError):
    code = "InvalidID"


class InvalidFilter(ApiError):
    code = "InvalidFilter"


class InvalidPaginationToken(ApiError):
    code = "InvalidPaginationToken"


class IdempotentParameterMismatch(ApiError):
    code = "IdempotentParameterMismatch"


class InstanceLimitExceeded(ApiError):
    code = "InstanceLimitExceeded"


class InsufficientInstanceCapacity(ApiError):
    code = "InsufficientInstanceCapacity"
    status = 500


class InvalidGroupIdMalformed(ApiError):
    code = "InvalidGroupId.Malformed"


class InvalidGroupDuplicate(ApiError):
    code = "InvalidGroup.Duplicate"


class InvalidGroupReserved(ApiError):
    code = "InvalidGroup.Reserved"


class InvalidGroupInUse(ApiError):
    code = "InvalidGroup.InUse"


class DependencyViolation(ApiError):
    code = "DependencyViolation"


class CannotDelete(ApiError):
    code = "CannotDelete"


class InvalidPermissionDuplicate(ApiError):
    code = "InvalidPermission.Duplicate"


class InvalidPermissionNotFound(ApiError):
    code = "InvalidPermission.NotFound"


class InvalidPermissionMalformed(ApiError):
    code = "InvalidPermission.Malformed"


class RulesPerSecurityGroupLimitExceeded(ApiError):
    code = "RulesPerSecurityGroupLimitExceeded"


class InvalidSecurityGroupRuleIdNotFound(ApiError):
    code = "InvalidSecurityGroupRuleId.NotFound"


class AddressLimitExceeded(ApiError):
    code = "AddressLimitExceeded"


class InvalidAllocationIDNotFound(ApiError):
    code = "InvalidAllocationID.NotFound"


class InvalidAssociationIDNotFound(ApiError):
    code = "InvalidAssociationID.NotFound"


class InvalidAddressNotFound(ApiError):
    code = "InvalidAddress.NotFound"


class ResourceAlreadyAssociated(ApiError):
    code = "Resource.AlreadyAssociated"


class InvalidIPAddressInUse(ApiError):
    code = "InvalidIPAddress.InUse"


class InvalidVpcIDNotFound(ApiError):
    code = "InvalidVpcID.NotFound"


class InvalidVpcRange(ApiError):
    code = "InvalidVpc.Range"


class VpcLimitExceeded(ApiError):
    code = "VpcLimitExceeded"


class InvalidSubnetRange(ApiError):
    code = "InvalidSubnet.Range"


class InvalidSubnetConflict(ApiError):
    code = "InvalidSubnet.Conflict"


class InvalidInternetGatewayIDNotFound(ApiError):
    code = "InvalidInternetGatewayID.NotFound"


class InvalidGatewayIDNotFound(ApiError):
    code = "InvalidGatewayID.NotFound"


class GatewayNotAttached(ApiError):
    code = "Gateway.NotAttached"


class InvalidRouteTableIDNotFound(ApiError):
    code = "InvalidRouteTableID.NotFound"


class RouteAlreadyExists(ApiError):
    code = "RouteAlreadyExists"


class InvalidRouteNotFound(ApiError):
    code = "InvalidRoute.NotFound"


class InvalidVolumeNotFound(ApiError):
    code = "InvalidVolume.NotFound"


class InvalidNetworkInterfaceIDNotFound(ApiError):
    code = "InvalidNetworkInterfaceID.NotFound"


class InvalidLaunchTemplateNameAlreadyExists(ApiError):
    code = "InvalidLaunchTemplateName.AlreadyExistsException"


class InvalidLaunchTemplateNameNotFound(ApiError):
    code = "InvalidLaunchTemplateName.NotFoundException"


class InvalidLaunchTemplateNameMalformed(ApiError):
    code = "InvalidLaunchTemplateName.MalformedException"


class InvalidLaunchTemplateIdNotFound(ApiError):
    code = "InvalidLaunchTemplateId.NotFound"


class InvalidLaunchTemplateIdMalformed(ApiError):
    code = "InvalidLaunchTemplateId.Malformed"


class InvalidLaunchTemplateIdVersionNotFound(ApiError):
    code = "InvalidLaunchTemplateId.VersionNotFound"


class VersionLimitExceeded(ApiError):
    code = "VersionLimitExceeded"


class TagLimitExceeded(ApiError):
    code = "TagLimitExceeded"


class DefaultVpcAlreadyExists(ApiError):
    code = "DefaultVpcAlreadyExists"


class DefaultSubnetAlreadyExistsInAvailabilityZone(ApiError):
    code = "DefaultSubnetAlreadyExistsInAvailabilityZone"


# -- EBS and images -------------------------------------------------------------------
class InvalidVolumeMalformed(ApiError):
    code = "InvalidVolume.Malformed"


class InvalidVolumeZoneMismatch(ApiError):
    code = "InvalidVolume.ZoneMismatch"


class VolumeInUse(ApiError):
    code = "VolumeInUse"


class IncorrectState(ApiError):
    code = "IncorrectState"


class IncorrectModificationState(ApiError):
    code = "IncorrectModificationState"


class VolumeLimitExceeded(ApiError):
    code = "VolumeLimitExceeded"


class AttachmentLimitExceeded(ApiError):
    code = "AttachmentLimitExceeded"


class InvalidAttachmentNotFound(ApiError):
    code = "InvalidAttachment.NotFound"


class InvalidSnapshotNotFound(ApiError):
    code = "InvalidSnapshot.NotFound"


class InvalidSnapshotMalformed(ApiError):
    code = "InvalidSnapshot.Malformed"


class InvalidSnapshotInUse(ApiError):
    code = "InvalidSnapshot.InUse"


class InvalidZoneNotFound(ApiError):
    code = "InvalidZone.NotFound"


class InsufficientVolumeCapacity(ApiError):
    code = "InsufficientVolumeCapacity"
    status = 503


class InvalidAMINameDuplicate(ApiError):
    code = "InvalidAMIName.Duplicate"


class InvalidAMINameMalformed(ApiError):
    code = "InvalidAMIName.Malformed"


class InvalidAMIAttributeItemValue(ApiError):
    code = "InvalidAMIAttributeItemValue"


class InvalidBlockDeviceMapping(ApiError):
    code = "InvalidBlockDeviceMapping"


class InvalidUserIDMalformed(ApiError):
    code = "InvalidUserID.Malformed"


class InvalidInstanceAttributeValue(ApiError):
    code = "InvalidInstanceAttributeValue"


class InvalidDhcpOptionIDNotFound(ApiError):
    code = "InvalidDhcpOptionID.NotFound"


class InvalidDhcpOptionsIdMalformed(ApiError):
    code = "InvalidDhcpOptionsId.Malformed"


class InvalidPrefixListIDNotFound(ApiError):
    code = "InvalidPrefixListID.NotFound"


class InvalidPrefixListIdMalformed(ApiError):
    code = "InvalidPrefixListId.Malformed"


class InvalidPrefixListModification(ApiError):
    code = "InvalidPrefixListModification"


class PrefixListVersionMismatch(ApiError):
    code = "PrefixListVersionMismatch"


class PrefixListMaxEntriesExceeded(ApiError):
    code = "PrefixListMaxEntriesExceeded"


class InvalidVpcPeeringConnectionIDNotFound(ApiError):
    code = "InvalidVpcPeeringConnectionID.NotFound"


class InvalidVpcPeeringConnectionIdMalformed(ApiError):
    code = "InvalidVpcPeeringConnectionId.Malformed"


class InvalidStateTransition(ApiError):
    code = "InvalidStateTransition"


class InvalidNetworkInterfaceIDMalformed(ApiError):
    code = "InvalidNetworkInterfaceID.Malformed"


class InvalidCidrBlockInUse(ApiError):
    code = "InvalidCidrBlock.InUse"


class InvalidNetworkInterfaceInUse(ApiError):
    code = "InvalidNetworkInterface.InUse"


class InvalidAttachmentIDNotFound(ApiError):
    code = "InvalidAttachmentID.NotFound"


class PrivateIpAddressLimitExceeded(ApiError):
    code = "PrivateIpAddressLimitExceeded"


class InsufficientFreeAddressesInSubnet(ApiError):
    code = "InsufficientFreeAddressesInSubnet"


class InvalidPlacementGroupUnknown(ApiError):
    code = "InvalidPlacementGroup.Unknown"


class InvalidPlacementGroupDuplicate(ApiError):
    code = "InvalidPlacementGroup.Duplicate"


class InvalidPlacementGroupInUse(ApiError):
    code = "InvalidPlacementGroup.InUse"


class InvalidInstanceID(ApiError):
    """A route to an instance with more than one interface: name the interface instead."""

    code = "InvalidInstanceID"


class NatGatewayNotFound(ApiError):
    code = "NatGatewayNotFound"


class NatGatewayMalformed(ApiError):
    code = "NatGatewayMalformed"


class InvalidNatGatewayIDNotFound(ApiError):
    """CreateRoute/ReplaceRoute naming a NAT gateway that does not exist."""

    code = "InvalidNatGatewayID.NotFound"


class CidrConflict(ApiError):
    code = "CidrConflict"


class InvalidCidrBlockAssociationIDNotFound(ApiError):
    """Disassociate*CidrBlock of an unknown association (AWS: InvalidVpcCidrBlockAssociationID.NotFound)."""

    code = "InvalidVpcCidrBlockAssociationID.NotFound"


class CidrLimitExceeded(ApiError):
    code = "CidrLimitExceeded"


class InvalidEgressOnlyInternetGatewayIdNotFound(ApiError):
    code = "InvalidEgressOnlyInternetGatewayId.NotFound"


class InvalidEgressOnlyInternetGatewayIdMalformed(ApiError):
    code = "InvalidEgressOnlyInternetGatewayId.Malformed"


class InsufficientCidrBlocks(ApiError):
    code = "InsufficientCidrBlocks"


class InvalidSubnetCidrBlockAssociationIDNotFound(ApiError):
    code = "InvalidSubnetCidrBlockAssociationID.NotFound"
