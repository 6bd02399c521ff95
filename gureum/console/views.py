"""Templates (Jinja2, autoescaped) and static files, both shipped inside the package."""

from __future__ import annotations

import hashlib
import mimetypes
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gureum.console import formats


class Views:
    def __init__(self) -> None:
        self.env = Environment(loader=PackageLoader("gureum.console", "templates"),
                               autoescape=select_autoescape(["html"]), trim_blocks=True,
                               lstrip_blocks=True, undefined=StrictUndefined)
        self.static: dict[str, tuple[bytes, str, str]] = {}  # name -> (body, type, digest)
        for item in (resources.files("gureum.console") / "static").iterdir():
            if item.is_file():
                body = item.read_bytes()
                kind = mimetypes.guess_type(item.name)[0] or "application/octet-stream"
                self.static[item.name] = (body, kind, hashlib.sha256(body).hexdigest()[:12])
        self.env.globals["static"] = self.static_url
        self.env.filters.update(formats.FILTERS)

    def static_url(self, name: str) -> str:
        # The digest in the URL lets browsers keep the file forever (a new one is a new URL).
        return f"/console/static/{name}?v={self.static[name][2]}"

    def render(self, template: str, **context: Any) -> bytes:
        return self.env.get_template(template).render(**context).encode()
