"""ACM over the JSON protocol (learnt from botocore's model, as EC2's and ELBv2's are)."""

from __future__ import annotations

from helpers import error_code as code

from gureum.testing_certs import self_signed
from gureum.testing_inprocess import FastCloud


def test_import_describe_list_get_delete(fast: FastCloud) -> None:
    acm = fast.client("acm")
    cert, key = self_signed("shop.example")
    arn = acm.import_certificate(Certificate=cert, PrivateKey=key,
                                 Tags=[{"Key": "app", "Value": "shop"}])["CertificateArn"]
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert detail["DomainName"] == "shop.example" and detail["Type"] == "IMPORTED"
    assert detail["SubjectAlternativeNames"] == ["shop.example", "*.shop.example"]
    assert detail["KeyAlgorithm"] == "EC_prime256v1" and detail["Status"] == "ISSUED"
    assert detail["NotAfter"] > detail["NotBefore"]
    assert [c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]] == [arn]
    assert acm.get_certificate(CertificateArn=arn)["Certificate"] == cert.decode()
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [
        {"Key": "app", "Value": "shop"}]
    acm.delete_certificate(CertificateArn=arn)
    assert code(acm.describe_certificate, CertificateArn=arn) == "ResourceNotFoundException"


def test_bad_certificates_and_arns(fast: FastCloud) -> None:
    acm = fast.client("acm")
    cert, _ = self_signed("a.example")
    _, other_key = self_signed("b.example")
    assert code(acm.import_certificate, Certificate=cert, PrivateKey=other_key) == \
        "ValidationException"
    assert code(acm.import_certificate, Certificate=b"not a certificate",
                PrivateKey=other_key) == "ValidationException"
    assert code(acm.describe_certificate, CertificateArn="arn:aws:acm:nowhere:nope") == \
        "InvalidArnException"
    assert code(acm.delete_certificate, CertificateArn=(
        "arn:aws:acm:gureum-1:000000000000:certificate/00000000-0000-0000-0000-000000000000"
    )) == "ResourceNotFoundException"
