"""The HTTP front door: SigV4 verification and malformed requests, with raw HTTP."""

from __future__ import annotations

import datetime as dt
import http.client
import re

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed(server, body: str, access: str | None = None, secret: str | None = None,
           service: str = "ec2", when: dt.datetime | None = None) -> tuple[int, str]:
    a, s = server.credentials()
    creds = Credentials(access or a, secret or s)
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    signer = SigV4Auth(creds, service, "gureum-1")
    if when is not None:
        # botocore stamps the current time; re-sign with a chosen time.
        request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        signer._timestamp = lambda: when.strftime("%Y%m%dT%H%M%SZ")  # type: ignore[method-assign]
        import botocore.auth as auth_mod
        real = auth_mod.datetime.datetime

        class Frozen(real):  # type: ignore[misc, valid-type]
            @classmethod
            def utcnow(cls):  # noqa: ANN206
                return when.replace(tzinfo=None)

            @classmethod
            def now(cls, tz=None):  # noqa: ANN001, ANN206
                return when if tz else when.replace(tzinfo=None)

        auth_mod.datetime.datetime = Frozen
        try:
            signer.add_auth(request)
        finally:
            auth_mod.datetime.datetime = real
    else:
        signer.add_auth(request)
    return raw(server, request.body, dict(request.headers.items()))


def raw(server, body, headers: dict[str, str]) -> tuple[int, str]:  # noqa: ANN001
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/", body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


def error_code(text: str) -> str:
    m = re.search(r"<Code>([^<]+)</Code>", text)
    assert m, text
    return m.group(1)


def test_good_signature_works(server):
    status, text = signed(server, "Action=DescribeRegions&Version=2016-11-15")
    assert status == 200 and "<regionName>gureum-1</regionName>" in text


def test_missing_authentication(server):
    status, text = raw(server, "Action=DescribeRegions", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401 and error_code(text) == "MissingAuthenticationToken"
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors>')


def test_unknown_access_key(server):
    status, text = signed(server, "Action=DescribeRegions", access="AKIANOTAREALKEY00000")
    assert status == 401 and error_code(text) == "AuthFailure"


def test_wrong_secret(server):
    status, text = signed(server, "Action=DescribeRegions", secret="x" * 40)
    assert status == 403 and error_code(text) == "SignatureDoesNotMatch"


def test_tampered_body(server):
    a, s = server.credentials()
    request = AWSRequest(method="POST", url=server.endpoint + "/", data="Action=DescribeRegions",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(a, s), "ec2", "gureum-1").add_auth(request)
    status, text = raw(server, "Action=DescribeImages", dict(request.headers.items()))
    assert error_code(text) == "SignatureDoesNotMatch"


def test_expired_request(server):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    status, text = signed(server, "Action=DescribeRegions", when=old)
    assert error_code(text) == "RequestExpired"


def test_malformed_authorization_header(server):
    status, text = raw(server, "Action=DescribeRegions", {"Authorization": "AWS4-HMAC-SHA256 garbage"})
    assert error_code(text) == "IncompleteSignature"


def test_unknown_parameter_and_action(server):
    status, text = signed(server, "Action=DescribeRegions&Bogus=1")
    assert status == 400 and error_code(text) == "UnknownParameter"
    status, text = signed(server, "Action=FlyToTheMoon")
    assert error_code(text) == "InvalidAction"
    status, text = signed(server, "Version=2016-11-15")
    assert error_code(text) == "MissingAction"


def test_bad_types_and_missing_parameters(server):
    status, text = signed(server, "Action=RunInstances&ImageId=ami-0123456789abcdef0&MinCount=one&MaxCount=1")
    assert error_code(text) == "InvalidParameterValue"
    status, text = signed(server, "Action=RunInstances&ImageId=ami-0123456789abcdef0&MaxCount=1")
    assert error_code(text) == "MissingParameter"
    status, text = signed(server, "Action=DescribeInstances&MaxResults=99999999999999")
    assert error_code(text) == "InvalidParameterValue"
    status, text = signed(server, "Action=DescribeInstances&InstanceId.5000=i-0123456789abcdef0")
    assert error_code(text) == "InvalidParameterValue"
    status, text = signed(server, "Action=DescribeInstances&InstanceId.99999999=i-0123456789abcdef0")
    assert error_code(text) == "UnknownParameter"


def test_oversized_body(server):
    status, text = signed(server, "Action=DescribeRegions&" + "a=1&" * 300000)
    assert status == 413 and error_code(text) == "RequestEntityTooLarge"


def test_unknown_service_in_scope(server):
    status, text = signed(server, "Action=ListQueues", service="sqs")
    assert error_code(text) == "InvalidAction"
