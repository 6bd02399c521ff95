"""API actions called as the signed-in account, through the API server's own path.

The console builds each call's parameters the way boto3 does (botocore member names),
botocore's serializer turns them into the wire form, and `Api.call` parses them with the
model (so every validation and error code is the API's), applies the account's rate
limit and runs the registered handler. Nothing here writes to the store.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from botocore.serialize import create_serializer

from gureum.api.dispatch import SERVICES

if TYPE_CHECKING:
    from gureum.api.server import Api, Protocol

# SigV4 service name of each botocore model gureum serves ("elbv2" -> "elasticloadbalancing").
SIGNING_NAME = {model: signing for signing, model in SERVICES.items()}
FORM_KINDS = ("ec2", "query", "json")  # preferred order: form protocols parse cheapest


class Actions:
    def __init__(self, api: Api) -> None:
        self.api = api
        self._serializers: dict[str, Any] = {}

    def __call__(self, account_id: str, action: str, params: dict[str, Any] | None = None,
                 service: str = "ec2") -> dict[str, Any]:
        """The handler's result for `action` (an `ApiError` when it refuses)."""
        signing = SIGNING_NAME[service]
        protocol = self._protocol(signing)
        operation = protocol.model.operation_model(action)
        serializer = self._serializers.get(protocol.kind)
        if serializer is None:
            serializer = self._serializers[protocol.kind] = _lenient(create_serializer(
                protocol.kind, include_validation=False))
        body = serializer.serialize_to_request(params or {}, operation)["body"]
        raw: dict[str, str] | bytes = (
            {k: _wire(v) for k, v in body.items()} if isinstance(body, dict) else body)
        return self.api.call(protocol, signing, action, raw, account_id,
                             self.api.cloud.config.region, str(uuid.uuid4()))

    def _protocol(self, signing: str) -> Protocol:
        kinds = self.api.protocols[signing].by_kind
        return next(kinds[k] for k in FORM_KINDS if k in kinds)


def _lenient(serializer: Any) -> Any:
    """Form fields are text: botocore passes text through for integers, but raises on
    text for floats. Pass it through too, so the API's parser judges "abc" for a
    Threshold and answers with its own error, as it would to any client."""
    handle_float = getattr(serializer, "_handle_float", None)
    if handle_float is not None:
        serializer._handle_float = lambda value: (
            value if isinstance(value, str) else handle_float(value))
    return serializer


def _wire(value: Any) -> str:
    """A form value as it travels (botocore leaves numbers unconverted in the dict)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
