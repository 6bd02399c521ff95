"""Lifecycle hooks: a launching instance waits in Pending:Wait, a leaving one in
Terminating:Wait, until CompleteLifecycleAction gives a result or the heartbeat timeout
applies the hook's DefaultResult. ABANDON on launch terminates the instance; on
termination either result proceeds."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.store.autoscaling_models import GroupInstance, LifecycleHook

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
RESULTS = ("CONTINUE", "ABANDON")


def hook_for(s: Session, group_arn: str, transition: str) -> LifecycleHook | None:
    return s.scalar(select(LifecycleHook).where(LifecycleHook.group_arn == group_arn,
                                                LifecycleHook.transition == transition)
                    .order_by(LifecycleHook.name).limit(1))


def wait(m: GroupInstance, hook: LifecycleHook, state: str, now: dt.datetime) -> None:
    m.lifecycle_state, m.action_hook, m.action_token = state, hook.name, str(uuid.uuid4())
    m.action_deadline = now + dt.timedelta(seconds=hook.heartbeat_timeout)
    m.action_result = None


def outcome(s: Session, m: GroupInstance, now: dt.datetime) -> str | None:
    """The result a waiting member goes on with: given, or the default once timed out."""
    if m.action_result:
        return m.action_result
    if m.action_deadline is not None and now >= m.action_deadline:
        hook = s.get(LifecycleHook, (m.group_arn, m.action_hook or ""))
        return hook.default_result if hook else "CONTINUE"
    return None
