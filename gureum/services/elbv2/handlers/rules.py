"""Listener rules: conditions (path-pattern, host-header, http-header,
http-request-method, query-string, source-ip) and actions, by unique priority. The
listener's default actions are its `default` rule, as DescribeRules shows them."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from sqlalchemy import select

from gureum.api.dispatch import RequestContext, action
from gureum.services.elbv2 import exceptions as exc
from gureum.services.elbv2 import resources as res
from gureum.services.elbv2.handlers.listeners import check_actions
from gureum.services.elbv2.handlers.tags import delete_tags, put_tags, validate_tags
from gureum.store.elbv2_models import Listener, ListenerRule

MAX_RULES = 100
FIELDS = {"path-pattern": "PathPatternConfig", "host-header": "HostHeaderConfig",
          "http-header": "HttpHeaderConfig", "http-request-method": "HttpRequestMethodConfig",
          "query-string": "QueryStringConfig", "source-ip": "SourceIpConfig"}
_SAFE = re.compile(r"^[A-Za-z0-9_.*?/~:@!$&'()+,;=%\[\]-]{1,128}$")
_METHOD = re.compile(r"^[A-Z_-]{1,40}$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}$")


def _values(cond: dict[str, Any], config: str) -> list[str]:
    return list((cond.get(config) or {}).get("Values") or cond.get("Values") or [])


def check_conditions(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validated conditions, in the shape DescribeRules returns them (AWS fills both
    `Values` and the field's own config for the simple fields)."""
    if not conditions:
        raise exc.ValidationError("A rule needs at least one condition")
    out, total = [], 0
    for cond in conditions:
        field = cond.get("Field")
        if field not in FIELDS:
            raise exc.ValidationError(f"Condition field '{str(field)[:40]}' is not supported")
        config = FIELDS[field]
        clean: dict[str, Any] = {"Field": field}
        if field == "query-string":
            pairs = (cond.get(config) or {}).get("Values") or []
            for pair in pairs:
                for part in (pair.get("Key"), pair.get("Value")):
                    if part is not None and not _SAFE.match(part):
                        raise exc.ValidationError(f"Query string value '{part[:64]}' is not valid")
            clean[config] = {"Values": [{k: v for k, v in p.items() if k in ("Key", "Value")}
                                        for p in pairs]}
            count = len(pairs)
        elif field == "http-header":
            cfg = cond.get(config) or {}
            name = cfg.get("HttpHeaderName", "")
            if not _HEADER.match(name):
                raise exc.ValidationError(f"HTTP header name '{name[:40]}' is not valid")
            values = list(cfg.get("Values") or [])
            for value in values:
                if not _SAFE.match(value):
                    raise exc.ValidationError(f"Header value '{value[:64]}' is not valid")
            clean[config] = {"HttpHeaderName": name, "Values": values}
            count = len(values)
        else:
            values = _values(cond, config)
            for value in values:
                if field == "http-request-method":
                    ok = bool(_METHOD.match(value))
                elif field == "source-ip":
                    try:
                        ipaddress.ip_network(value)
                        ok = True
                    except ValueError:
                        ok = False
                else:
                    ok = bool(_SAFE.match(value))
                if not ok:
                    raise exc.ValidationError(f"Condition value '{value[:64]}' is not valid "
                                              f"for {field}")
            clean[config] = {"Values": values}
            if field in ("path-pattern", "host-header"):
                clean["Values"] = values
            count = len(values)
        if count == 0:
            raise exc.ValidationError(f"Condition '{field}' needs at least one value")
        total += count
        out.append(clean)
    if total > 5:
        raise exc.ValidationError("A rule has at most 5 condition values in all")
    return out


def _view(rule: ListenerRule) -> dict[str, Any]:
    return {"RuleArn": rule.arn, "Priority": str(rule.priority), "Conditions": rule.conditions,
            "Actions": rule.actions, "IsDefault": False}


def _default_view(lst: Listener) -> dict[str, Any]:
    return {"RuleArn": lst.arn.replace(":listener/", ":listener-rule/") + "/default",
            "Priority": "default", "Conditions": [], "Actions": lst.default_actions,
            "IsDefault": True}


def _check_priority(priority: int) -> None:
    if not 1 <= priority <= 50000:
        raise exc.ValidationError("Rule priority must be between 1 and 50000")


def _owner(s: Any, ctx: RequestContext, lst: Listener) -> Any:
    lb = res.load_balancer(s, ctx.account_id, lst.load_balancer_arn)
    if lb.type != "application":
        raise exc.ValidationError("Rules are for listeners of application load balancers")
    return lb


@action("elasticloadbalancing", "CreateRule")
def create_rule(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    _check_priority(p["Priority"])
    conditions = check_conditions(p["Conditions"])
    tags = validate_tags(p.get("Tags") or [])
    with ctx.cloud.store.write() as s:
        lst = res.listener(s, ctx.account_id, p["ListenerArn"])
        lb = _owner(s, ctx, lst)
        rules = list(s.scalars(select(ListenerRule).where(ListenerRule.listener_arn == lst.arn)))
        if any(r.priority == p["Priority"] for r in rules):
            raise exc.PriorityInUse(f"Priority '{p['Priority']}' is currently in use")
        if len(rules) >= MAX_RULES:
            raise exc.TooManyRules(f"A listener has at most {MAX_RULES} rules")
        actions = check_actions(s, lb, p["Actions"])
        rule = ListenerRule(
            arn=lst.arn.replace(":listener/", ":listener-rule/") + "/" + res.new_id(),
            listener_arn=lst.arn, account_id=ctx.account_id, priority=p["Priority"],
            conditions=conditions, actions=actions)
        s.add(rule)
        s.flush()
        put_tags(s, ctx.account_id, rule.arn, tags)
        return {"Rules": [_view(rule)]}


@action("elasticloadbalancing", "DescribeRules")
def describe_rules(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.read() as s:
        if p.get("RuleArns"):
            views = [_view(res.rule(s, ctx.account_id, arn)) for arn in p["RuleArns"]]
        elif p.get("ListenerArn"):
            lst = res.listener(s, ctx.account_id, p["ListenerArn"])
            rules = s.scalars(select(ListenerRule).where(ListenerRule.listener_arn == lst.arn)
                              .order_by(ListenerRule.priority))
            views = [_view(r) for r in rules] + [_default_view(lst)]
        else:
            raise exc.ValidationError("Specify a listener ARN or rule ARNs")
    chunk, marker = res.page(views, p.get("PageSize"), p.get("Marker"))
    return {"Rules": chunk, "NextMarker": marker}


@action("elasticloadbalancing", "ModifyRule")
def modify_rule(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        rule = res.rule(s, ctx.account_id, p["RuleArn"])
        lst = res.listener(s, ctx.account_id, rule.listener_arn)
        lb = _owner(s, ctx, lst)
        if p.get("Conditions"):
            rule.conditions = check_conditions(p["Conditions"])
        if p.get("Actions"):
            rule.actions = check_actions(s, lb, p["Actions"])
        return {"Rules": [_view(rule)]}


@action("elasticloadbalancing", "SetRulePriorities")
def set_rule_priorities(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.cloud.store.write() as s:
        changes = {}
        for pair in p["RulePriorities"]:
            _check_priority(pair["Priority"])
            changes[pair["RuleArn"]] = pair["Priority"]
        rules = [res.rule(s, ctx.account_id, arn) for arn in changes]
        for listener_arn in {r.listener_arn for r in rules}:
            mine = list(s.scalars(select(ListenerRule).where(
                ListenerRule.listener_arn == listener_arn)))
            after = [changes.get(r.arn, r.priority) for r in mine]
            if len(after) != len(set(after)):
                raise exc.PriorityInUse("Two rules of one listener cannot share a priority")
        for rule in rules:
            rule.priority = changes[rule.arn]
        return {"Rules": [_view(r) for r in rules]}


@action("elasticloadbalancing", "DeleteRule")
def delete_rule(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p["RuleArn"].endswith("/default"):
        raise exc.OperationNotPermitted("The default rule of a listener cannot be deleted")
    with ctx.cloud.store.write() as s:
        rule = res.rule(s, ctx.account_id, p["RuleArn"])
        delete_tags(s, [rule.arn])
        s.delete(rule)
    return {}
