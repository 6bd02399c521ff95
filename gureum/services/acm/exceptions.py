"""ACM error codes: one class per AWS code (botocore's acm model names them)."""

from __future__ import annotations

from gureum.errors import ApiError


class ValidationException(ApiError):
    code = "ValidationException"


class ResourceNotFoundException(ApiError):
    code = "ResourceNotFoundException"


class ResourceInUseException(ApiError):
    code = "ResourceInUseException"


class InvalidArnException(ApiError):
    code = "InvalidArnException"


class LimitExceededException(ApiError):
    code = "LimitExceededException"


class InvalidTagException(ApiError):
    code = "InvalidTagException"


class TooManyTagsException(ApiError):
    code = "TooManyTagsException"


class InvalidArgsException(ApiError):
    code = "InvalidArgsException"


class InvalidDomainValidationOptionsException(ApiError):
    code = "InvalidDomainValidationOptionsException"


class RequestInProgressException(ApiError):
    code = "RequestInProgressException"
