"""An HTTPS listener's certificates beyond its default: the proxy picks one by the name
the client asks for (SNI), the default when none matches."""

from __future__ import annotations

from typing import Any

from gureum.api.dispatch import RequestContext, action
from gureum.services.elbv2 import exceptions as exc
from gureum.services.elbv2 import resources as res
from gureum.services.elbv2.handlers.listeners import usable_certificate

MAX_CERTIFICATES = 25  # AWS's default quota of certificates per ALB listener


def _https_listener(s: Any, ctx: RequestContext, arn: str) -> Any:
    lst = res.listener(s, ctx.account_id, arn)
    if lst.protocol != "HTTPS":
        raise exc.InvalidConfigurationRequest(
            f"Listener '{arn[:512]}' is {lst.protocol}: only HTTPS listeners have certificates")
    return lst


@action("elasticloadbalancing", "AddListenerCertificates")
def add_listener_certificates(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        lst = _https_listener(s, ctx, p["ListenerArn"])
        held = [c["CertificateArn"] for c in lst.certificates]
        added = []
        for item in p["Certificates"]:
            arn = item.get("CertificateArn") or ""
            usable_certificate(s, ctx.account_id, arn)
            if arn not in held:
                held.append(arn)
            added.append({"CertificateArn": arn, "IsDefault": arn == held[0]})
        if len(held) > MAX_CERTIFICATES:
            raise exc.TooManyCertificates(
                f"A listener has at most {MAX_CERTIFICATES} certificates")
        lst.certificates = [{"CertificateArn": arn} for arn in held]
    return {"Certificates": added}


@action("elasticloadbalancing", "RemoveListenerCertificates")
def remove_listener_certificates(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        lst = _https_listener(s, ctx, p["ListenerArn"])
        gone = {c.get("CertificateArn") for c in p["Certificates"]}
        if lst.certificates and lst.certificates[0]["CertificateArn"] in gone:
            raise exc.OperationNotPermitted(
                "The default certificate cannot be removed: change it with ModifyListener")
        lst.certificates = [c for c in lst.certificates if c["CertificateArn"] not in gone]
    return {}


@action("elasticloadbalancing", "DescribeListenerCertificates")
def describe_listener_certificates(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        lst = res.listener(s, ctx.account_id, p["ListenerArn"])
        views = [{"CertificateArn": c["CertificateArn"], "IsDefault": i == 0}
                 for i, c in enumerate(lst.certificates)]
    chunk, marker = res.page(views, p.get("PageSize"), p.get("Marker"))
    return {"Certificates": chunk, "NextMarker": marker}
