"""Routes: each page module registers its views with `@route`; app.py dispatches."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

View = Callable[..., object]  # (page, **path groups) -> Response


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    view: View
    public: bool  # reachable without a session (sign-in)


ROUTES: list[Route] = []
ID = r"[A-Za-z0-9._:-]+"  # resource ids and names in paths (key pair names, too)


def route(method: str, path: str, public: bool = False) -> Callable[[View], View]:
    """Register a view for `method` on `path` (below /console; `{name}` captures an id)."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", rf"(?P<\1>{ID})", path) + "$")

    def register(view: View) -> View:
        ROUTES.append(Route(method, regex, view, public))
        return view
    return register


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None | bool:
    """The route and its captures; False when the path exists for another method only."""
    other_method = False
    for r in ROUTES:
        m = r.pattern.match(path)
        if m:
            if r.method == method:
                return r, m.groupdict()
            other_method = True
    return False if other_method else None


def load_pages() -> None:
    """Import every page module so their routes register."""
    from gureum.console.pages import (  # noqa: F401
        addresses,
        alarms,
        apps,
        auth,
        autoscaling,
        images,
        instances,
        key_pairs,
        launch_templates,
        load_balancers,
        monitoring,
        networks,
        security_groups,
        tags,
        target_groups,
        volumes,
    )


