"""ELBv2 error codes: one class per AWS code (botocore's elbv2 model names them)."""

from __future__ import annotations

from gureum.errors import ApiError


class ValidationError(ApiError):
    code = "ValidationError"


class DuplicateLoadBalancerName(ApiError):
    code = "DuplicateLoadBalancerName"


class DuplicateTargetGroupName(ApiError):
    code = "DuplicateTargetGroupName"


class DuplicateListener(ApiError):
    code = "DuplicateListener"


class DuplicateTagKeys(ApiError):
    code = "DuplicateTagKeys"


class LoadBalancerNotFound(ApiError):
    code = "LoadBalancerNotFound"


class TargetGroupNotFound(ApiError):
    code = "TargetGroupNotFound"


class ListenerNotFound(ApiError):
    code = "ListenerNotFound"


class RuleNotFound(ApiError):
    code = "RuleNotFound"


class SubnetNotFound(ApiError):
    code = "SubnetNotFound"


class InvalidSubnet(ApiError):
    code = "InvalidSubnet"


class InvalidSecurityGroup(ApiError):
    code = "InvalidSecurityGroup"


class InvalidTarget(ApiError):
    code = "InvalidTarget"


class InvalidConfigurationRequest(ApiError):
    code = "InvalidConfigurationRequest"


class IncompatibleProtocols(ApiError):
    code = "IncompatibleProtocols"


class UnsupportedProtocol(ApiError):
    code = "UnsupportedProtocol"


class OperationNotPermitted(ApiError):
    code = "OperationNotPermitted"


class PriorityInUse(ApiError):
    code = "PriorityInUse"


class ResourceInUse(ApiError):
    code = "ResourceInUse"


class TooManyTargets(ApiError):
    code = "TooManyTargets"


class TooManyLoadBalancers(ApiError):
    code = "TooManyLoadBalancers"


class TooManyListeners(ApiError):
    code = "TooManyListeners"


class TooManyTags(ApiError):
    code = "TooManyTags"


class CertificateNotFound(ApiError):
    code = "CertificateNotFound"


class InvalidLoadBalancerAction(ApiError):
    code = "InvalidLoadBalancerAction"


class SSLPolicyNotFound(ApiError):
    code = "SSLPolicyNotFound"


class TooManyRules(ApiError):
    code = "TooManyRules"


class TooManyCertificates(ApiError):
    code = "TooManyCertificates"
