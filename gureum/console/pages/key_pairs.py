"""Key pairs: list, create (the private key shown once, with a download), import, delete."""

from __future__ import annotations

import base64

from gureum.console.http import Response
from gureum.console.page import Page, error_on
from gureum.console.routing import route
from gureum.errors import ApiError

FIELDS = {"InvalidKeyPair": "key_name", "~key name": "key_name", "~KeyName": "key_name",
          "~KeyType": "key_type", "~public key": "public_key", "InvalidKey": "public_key"}


def _list(page: Page, status: int = 200, **context: object) -> Response:
    keys = sorted(page.call("DescribeKeyPairs")["KeyPairs"], key=lambda k: k["KeyName"])
    context.setdefault("values", {"key_name": "", "key_type": "ed25519"})
    return page.render("key_pairs.html", status=status, keys=keys, **context)


@route("GET", "/key-pairs")
def list_key_pairs(page: Page) -> Response:
    return _list(page)


@route("POST", "/key-pairs")
def create(page: Page) -> Response:
    values = {"key_name": page.request.field("key_name"),
              "key_type": page.request.field("key_type") or "ed25519"}
    try:
        out = page.call("CreateKeyPair", {"KeyName": values["key_name"],
                                          "KeyType": values["key_type"]})
    except ApiError as err:
        return _list(page, err.status, values=values, errors=error_on(err, FIELDS))
    # The private key exists only in this answer: gureum keeps the public half alone.
    material = out["KeyMaterial"]
    download = "data:application/x-pem-file;base64," + base64.b64encode(material.encode()).decode()
    return page.render("key_created.html", key=out, material=material, download=download)


@route("POST", "/key-pairs/import")
def import_key(page: Page) -> Response:
    values = {"key_name": page.request.field("import_name"),
              "public_key": page.request.field("public_key")}
    try:
        page.call("ImportKeyPair", {"KeyName": values["key_name"], "PublicKeyMaterial":
                                    base64.b64encode(values["public_key"].encode()).decode()})
    except ApiError as err:
        errors = error_on(err, {**FIELDS, "InvalidKeyPair": "import_name",
                                "~key name": "import_name", "~KeyName": "import_name"})
        return _list(page, err.status, imported=values, errors=errors)
    return page.done("/key-pairs", f"Imported key pair {values['key_name']}")


@route("POST", "/key-pairs/delete")
def delete(page: Page) -> Response:
    key_name = page.request.field("key_name")
    if (ask := page.unconfirmed(kind="key pair", name=key_name, action="/key-pairs/delete",
                                extra={"key_name": key_name}, back="/key-pairs",
                                note="Instances launched with it keep their authorized "
                                     "key.")) is not None:
        return ask
    return page.change("DeleteKeyPair", {"KeyName": key_name}, "/key-pairs",
                       f"Deleted key pair {key_name}")
