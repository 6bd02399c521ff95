"""CloudWatch error codes: one class per AWS code (botocore's cloudwatch model)."""

from __future__ import annotations

from gureum.errors import ApiError


class InvalidParameterValue(ApiError):
    code = "InvalidParameterValue"


class InvalidParameterCombination(ApiError):
    code = "InvalidParameterCombination"


class MissingParameter(ApiError):
    code = "MissingParameter"


class InvalidNextToken(ApiError):
    code = "InvalidNextToken"


class LimitExceeded(ApiError):
    code = "LimitExceeded"


class ResourceNotFound(ApiError):
    code = "ResourceNotFound"
    status = 404


class ResourceNotFoundException(ApiError):
    code = "ResourceNotFoundException"
    status = 404
