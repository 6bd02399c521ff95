"""Hostile and malformed input: a seeded, bounded fuzzer over every implemented action.

Requests are generated from botocore's input shapes, then mutated (wrong types, missing
and unknown parameters, huge and unicode strings, extreme numbers, odd list indexes, bad
base64). Every answer must be a well-formed AWS success or error, never a 5xx, and the
server must stay up with bounded memory. GUREUM_FUZZ_SEED / GUREUM_FUZZ_COUNT reproduce
or widen a run.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import ListShape, MapShape, Shape, StructureShape
from helpers import VENV_BIN

from gureum.api.dispatch import HANDLERS, load_handlers
from gureum.api.models import service_model

SEED = int(os.environ.get("GUREUM_FUZZ_SEED", "20261125"))
COUNT = int(os.environ.get("GUREUM_FUZZ_COUNT", "25"))
EC2 = service_model("ec2")
load_handlers()
ACTIONS = sorted(a for s, a in HANDLERS if s == "ec2")

STRINGS = ["", "x", "i-0123456789abcdef0", "ami-0123456789abcdef0", "sg-12345678", "default",
           "ünïcødé-✓-雲", "a" * 300, "a" * 70000, "' OR 1=1 --", "<xml>&amp;</xml>", "\x00\x01",
           "../../etc/passwd", "t3.micro", "running", "tag:Name", "*", "true", "-1", "1e309"]
NUMBERS = ["0", "1", "-1", "5", "1000", "2147483648", "-9223372036854775809", "99999999999999999999",
           "1.5", "NaN", "", "abc"]


def query_name(member: Shape, default: str) -> str:
    ser = member.serialization
    if "queryName" in ser:
        return ser["queryName"]
    if "name" in ser:
        return ser["name"][0].upper() + ser["name"][1:]
    return default


def generate(shape: Shape, prefix: str, rng: random.Random, out: dict[str, str], depth: int = 0) -> None:
    if depth > 5:
        return
    if isinstance(shape, StructureShape):
        for name, member in shape.members.items():
            if name in shape.required_members or rng.random() < 0.35:
                generate(member, f"{prefix}{query_name(member, name)}", rng, out, depth + 1)
        return
    if isinstance(shape, ListShape):
        for i in range(1, rng.choice([1, 1, 2, 3])):
            generate(shape.member, f"{prefix}.{i}" + ("." if isinstance(shape.member, StructureShape) else ""),
                     rng, out, depth + 1)
        return
    if isinstance(shape, MapShape):
        return
    key = prefix.rstrip(".")
    kind = shape.type_name
    if kind in ("integer", "long", "float", "double"):
        out[key] = rng.choice(NUMBERS)
    elif kind == "boolean":
        out[key] = rng.choice(["true", "false", "True", "yes", ""])
    elif kind == "blob":
        out[key] = rng.choice(["aGVsbG8=", "not base64!!", "", "=" * 5])
    elif kind == "timestamp":
        out[key] = rng.choice(["2026-01-01T00:00:00Z", "yesterday", "0", "-5"])
    elif shape.enum and rng.random() < 0.6:
        out[key] = rng.choice(shape.enum)
    else:
        out[key] = rng.choice(STRINGS)


def mutate(params: dict[str, str], rng: random.Random) -> dict[str, str]:
    params = dict(params)
    roll = rng.random()
    keys = [k for k in params if k not in ("Action", "Version")]
    if roll < 0.15 and keys:
        del params[rng.choice(keys)]
    elif roll < 0.3:
        params[rng.choice(["Bogus", "InstanceId.0", "Filter.1.Name.2", "X" * 200])] = "1"
    elif roll < 0.4 and keys:
        params[rng.choice(keys)] = rng.choice(STRINGS + NUMBERS)
    elif roll < 0.5:
        params[rng.choice(["InstanceId.1000000", "InstanceId.01", "Filter.9999.Name"])] = "x"
    return params


def send(server, body: bytes, creds: Credentials) -> tuple[int, str]:  # noqa: ANN001
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(creds, "ec2", "gureum-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/", body=request.body, headers=dict(request.headers.items()))
    resp = conn.getresponse()
    text = resp.read().decode("utf-8", errors="replace")
    conn.close()
    return resp.status, text


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1])


@pytest.fixture(scope="module")
def fuzz_account(server):  # noqa: ANN001, ANN201
    out = subprocess.run([str(VENV_BIN / "gureum"), "--data-dir", str(server.data_dir), "account",
                          "create", f"fuzz-{SEED}-{time.time_ns()}"], capture_output=True, text=True,
                         check=True).stdout
    creds = json.loads(out)
    yield Credentials(creds["AccessKeyId"], creds["SecretAccessKey"])
    ec2 = server.client(access=creds["AccessKeyId"], secret=creds["SecretAccessKey"])
    live = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"]
    for iid in live:  # anything the fuzzer managed to launch
        ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
    if live:
        ec2.terminate_instances(InstanceIds=live)


@pytest.mark.parametrize("action", ACTIONS)
def test_fuzz_action(server, fuzz_account, action):
    rng = random.Random(f"{SEED}:{action}")
    operation = EC2.operation_model(action)
    before = rss_kib(server.proc.pid)
    for i in range(COUNT):
        params: dict[str, str] = {"Action": action, "Version": "2016-11-15"}
        if operation.input_shape is not None:
            generate(operation.input_shape, "", rng, params)
        params = mutate(params, rng)
        params.pop("DryRun", None)
        status, text = send(server, urlencode(params).encode(), fuzz_account)
        where = f"{action} #{i} seed={SEED} params={dict(list(params.items())[:8])}"
        assert status < 500 or "<Code>RequestLimitExceeded</Code>" in text, f"{where}: {status} {text[:300]}"
        root = ET.fromstring(text)
        if status == 200:
            assert root.tag.endswith(f"{action}Response"), where
        else:
            assert root.find("./Errors/Error/Code") is not None, f"{where}: {text[:300]}"
    assert rss_kib(server.proc.pid) - before < 100 * 1024, "server memory grew by over 100 MiB"


def test_truncated_slow_and_garbage_connections(server):
    # A body shorter than its Content-Length, garbage bytes, and clients that stall
    # mid-headers: none of them may take the server down or block other clients.
    truncated = socket.create_connection(("127.0.0.1", server.port))
    truncated.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nAction=Desc")
    truncated.close()
    garbage = socket.create_connection(("127.0.0.1", server.port))
    garbage.sendall(os.urandom(4096) + b"\r\n\r\n")
    garbage.settimeout(5)
    with contextlib.suppress(OSError):
        garbage.recv(1024)
    garbage.close()
    stalled = []
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Le")
        stalled.append(s)
    start = time.monotonic()
    assert server.client().describe_regions()["Regions"]
    assert time.monotonic() - start < 5
    for s in stalled:
        s.close()
