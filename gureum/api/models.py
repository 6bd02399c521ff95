"""botocore's service models, loaded once per process."""

from __future__ import annotations

from functools import cache

import botocore.session
from botocore.model import ServiceModel


@cache
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)
