"""Errors common to every AWS Query-protocol service (auth, protocol, validation)."""

from __future__ import annotations

from gureum.errors import ApiError


class MissingAuthenticationToken(ApiError):
    code = "MissingAuthenticationToken"
    status = 401


class AuthFailure(ApiError):
    code = "AuthFailure"
    status = 401


class SignatureDoesNotMatch(ApiError):
    code = "SignatureDoesNotMatch"
    status = 403


class RequestExpired(ApiError):
    code = "RequestExpired"
    status = 400


class IncompleteSignature(ApiError):
    code = "IncompleteSignature"


class MissingAction(ApiError):
    code = "MissingAction"


class InvalidAction(ApiError):
    code = "InvalidAction"


class MissingParameter(ApiError):
    code = "MissingParameter"


class InvalidParameterValue(ApiError):
    code = "InvalidParameterValue"


class InvalidParameterCombination(ApiError):
    code = "InvalidParameterCombination"


class UnknownParameter(ApiError):
    code = "UnknownParameter"


class InvalidParameter(ApiError):
    code = "InvalidParameter"


class UnsupportedProtocol(ApiError):
    code = "UnsupportedProtocol"


class RequestEntityTooLarge(ApiError):
    code = "RequestEntityTooLarge"
    status = 413


class InternalError(ApiError):
    code = "InternalError"
    status = 500


class NotImplementedAction(ApiError):
    """A real AWS action gureum does not offer yet. 400, not 501: clients must not retry."""

    code = "NotImplemented"


class DryRunOperation(ApiError):
    code = "DryRunOperation"
    status = 412


class RequestLimitExceeded(ApiError):
    code = "RequestLimitExceeded"
    status = 503  # AWS's status for throttling; SDKs back off and retry on it


class ValidationException(ApiError):
    """Bad input to a JSON-protocol service whose model has no InvalidParameterValue."""

    code = "ValidationException"
