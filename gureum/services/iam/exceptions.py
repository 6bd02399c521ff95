"""IAM error codes: one class per AWS code (botocore's iam model)."""

from __future__ import annotations

from gureum.errors import ApiError


class NoSuchEntity(ApiError):
    code = "NoSuchEntity"
    status = 404
