"""Auto Scaling error codes: one class per AWS code (botocore's autoscaling model)."""

from __future__ import annotations

from gureum.errors import ApiError


class ValidationError(ApiError):
    code = "ValidationError"


class AlreadyExists(ApiError):
    code = "AlreadyExists"


class LimitExceeded(ApiError):
    code = "LimitExceeded"


class ResourceInUse(ApiError):
    code = "ResourceInUse"


class ScalingActivityInProgress(ApiError):
    code = "ScalingActivityInProgress"


class ResourceContention(ApiError):
    code = "ResourceContention"
    status = 500


class InvalidNextToken(ApiError):
    code = "InvalidNextToken"


class InstanceRefreshInProgress(ApiError):
    code = "InstanceRefreshInProgress"


class ActiveInstanceRefreshNotFound(ApiError):
    code = "ActiveInstanceRefreshNotFound"


class IrreversibleInstanceRefresh(ApiError):
    code = "IrreversibleInstanceRefresh"
