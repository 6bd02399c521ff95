"""Key pairs: the private key is returned once and never stored."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gureum.api.dispatch import RequestContext, action
from gureum.services.ec2 import exceptions as exc
from gureum.services.ec2 import filters, ids
from gureum.services.ec2.handlers import common
from gureum.services.ec2.views import tag_list
from gureum.store import models

_NAME = re.compile(r"^[\x20-\x7e]{1,255}$")
_SSH_TYPES = {"ssh-rsa": "rsa", "ssh-ed25519": "ed25519"}


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise exc.InvalidParameterValue(
            f"Value ({name[:64]}) for parameter KeyName is invalid: 1-255 ASCII characters")


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def _store(ctx: RequestContext, name: str, key_type: str, fingerprint: str, public: str,
           tags: list[tuple[str, str]]) -> models.KeyPair:
    pair = models.KeyPair(key_pair_id=ids.new("key"), account_id=ctx.account_id, name=name,
                          key_type=key_type, fingerprint=fingerprint, public_key=public)
    try:
        with ctx.cloud.store.write() as s:
            s.add(pair)
            s.flush()
            common.put_tags(s, ctx.account_id, pair.key_pair_id, tags)
    except IntegrityError:
        raise exc.InvalidKeyPairDuplicate(f"The keypair '{name}' already exists.") from None
    return pair


@action("ec2", "CreateKeyPair")
def create_key_pair(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["KeyName"]
    _check_name(name)
    key_type = p.get("KeyType", "rsa")
    if p.get("KeyFormat", "pem") != "pem":
        raise exc.UnsupportedOperation("Only the pem key format is supported")
    tags = common.tags_from_specs(p, "key-pair")
    with ctx.cloud.store.read() as s:
        if s.scalar(select(models.KeyPair).where(models.KeyPair.account_id == ctx.account_id,
                                                 models.KeyPair.name == name)):
            raise exc.InvalidKeyPairDuplicate(f"The keypair '{name}' already exists.")
    if key_type == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
        material = private.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.OpenSSH,
                                         serialization.NoEncryption())
        fingerprint = base64.b64encode(hashlib.sha256(_ssh_blob(private.public_key())).digest()).decode()
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        material = private.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption())
        pkcs8 = private.private_bytes(serialization.Encoding.DER,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        fingerprint = _colon_hex(hashlib.sha1(pkcs8).digest())
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
    pair = _store(ctx, name, key_type, fingerprint, public, tags)
    return {"KeyName": name, "KeyFingerprint": fingerprint,
            "KeyMaterial": material.decode().strip() + "\n",
            "KeyPairId": pair.key_pair_id, "Tags": tag_list(dict(tags)) or None}


def _ssh_blob(public_key: Any) -> bytes:
    line = public_key.public_bytes(serialization.Encoding.OpenSSH,
                                   serialization.PublicFormat.OpenSSH).decode()
    return base64.b64decode(line.split()[1])


def _openssh(text: str) -> str:
    """A public key in the three formats EC2 imports, as an OpenSSH line: OpenSSH's own,
    RFC 4716 (`---- BEGIN SSH2 PUBLIC KEY ----`, the body is the same wire blob) and PEM
    (SubjectPublicKeyInfo, converted)."""
    text = text.strip()
    if text.startswith("---- BEGIN SSH2 PUBLIC KEY ----"):
        body, continued = [], False
        for line in text.splitlines()[1:]:
            line = line.strip()
            if line.startswith("---- END SSH2 PUBLIC KEY ----"):
                break
            if continued or ":" in line:  # a header (Comment: ...), maybe continued with \
                continued = line.endswith("\\")
                continue
            body.append(line)
        blob = base64.b64decode("".join(body), validate=True)
        kind = blob[4:4 + int.from_bytes(blob[:4], "big")].decode()
        return f"{kind} {base64.b64encode(blob).decode()}"
    if text.startswith("-----BEGIN PUBLIC KEY-----") or text.startswith("-----BEGIN RSA PUBLIC KEY-----"):
        loader = serialization.load_pem_public_key
        key = loader(text.encode())
        return key.public_bytes(serialization.Encoding.OpenSSH,
                                serialization.PublicFormat.OpenSSH).decode()
    return text


@action("ec2", "ImportKeyPair")
def import_key_pair(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["KeyName"]
    _check_name(name)
    raw = p["PublicKeyMaterial"]
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    tags = common.tags_from_specs(p, "key-pair")
    try:
        parts = _openssh(text).split()
        if len(parts) < 2 or parts[0] not in _SSH_TYPES:
            raise ValueError
        key = serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (ValueError, UnicodeError, IndexError, TypeError, binascii.Error):
        raise exc.InvalidKeyFormat("Key is not in valid OpenSSH public key format") from None
    key_type = _SSH_TYPES[parts[0]]
    if key_type == "rsa":
        der = key.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
        fingerprint = _colon_hex(hashlib.md5(der).digest())
    else:
        fingerprint = base64.b64encode(hashlib.sha256(_ssh_blob(key)).digest()).decode()
    public = f"{parts[0]} {parts[1]}"
    pair = _store(ctx, name, key_type, fingerprint, public, tags)
    return {"KeyName": name, "KeyFingerprint": fingerprint, "KeyPairId": pair.key_pair_id,
            "Tags": tag_list(dict(tags)) or None}


@action("ec2", "DescribeKeyPairs")
def describe_key_pairs(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    names, pair_ids = p.get("KeyNames") or [], p.get("KeyPairIds") or []
    flt = filters.validate(p.get("Filters"), {"key-pair-id", "key-name", "fingerprint", "key-type"})
    with ctx.cloud.store.read() as s:
        pairs = list(s.scalars(select(models.KeyPair).where(
            models.KeyPair.account_id == ctx.account_id).order_by(models.KeyPair.name)))
        tags = common.tags_of(s, ctx.account_id, [k.key_pair_id for k in pairs])
    by_name = {k.name: k for k in pairs}
    by_id = {k.key_pair_id: k for k in pairs}
    for n in names:
        if n not in by_name:
            raise exc.InvalidKeyPairNotFound(f"The key pair '{n}' does not exist")
    for i in pair_ids:
        if i not in by_id:
            raise exc.InvalidKeyPairNotFound(f"The key pair ID '{i}' does not exist")
    if names or pair_ids:
        pairs = [k for k in pairs if k.name in names or k.key_pair_id in pair_ids]
    out = []
    for k in pairs:
        fields = {"key-pair-id": k.key_pair_id, "key-name": k.name, "fingerprint": k.fingerprint,
                  "key-type": k.key_type}
        if not filters.match(flt, fields, tags[k.key_pair_id]):
            continue
        item = {"KeyPairId": k.key_pair_id, "KeyName": k.name, "KeyFingerprint": k.fingerprint,
                "KeyType": k.key_type, "CreateTime": k.created_at,
                "Tags": tag_list(tags[k.key_pair_id])}
        if p.get("IncludePublicKey"):
            item["PublicKey"] = k.public_key
        out.append(item)
    return {"KeyPairs": out}


@action("ec2", "DeleteKeyPair")
def delete_key_pair(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name, pair_id = p.get("KeyName"), p.get("KeyPairId")
    if not name and not pair_id:
        raise exc.MissingParameter("The request must contain the parameter KeyName or KeyPairId")
    with ctx.cloud.store.write() as s:
        q = select(models.KeyPair).where(models.KeyPair.account_id == ctx.account_id)
        q = q.where(models.KeyPair.name == name) if name else q.where(
            models.KeyPair.key_pair_id == pair_id)
        pair = s.scalar(q)
        if pair is None:  # AWS answers success for a key that is already gone
            return {"Return": True}
        common.delete_with_tags(s, pair)
        return {"Return": True, "KeyPairId": pair.key_pair_id}
