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


def test_requested_certificates_are_signed_by_the_clouds_ca(fast: FastCloud) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    acm = fast.client("acm")
    own = acm.request_certificate(DomainName="*.gureum-1.apps.gureum.internal",
                                  KeyAlgorithm="EC_prime256v1")["CertificateArn"]
    detail = acm.describe_certificate(CertificateArn=own)["Certificate"]
    assert (detail["Status"], detail["Type"]) == ("ISSUED", "AMAZON_ISSUED")
    assert detail["DomainValidationOptions"][0]["ValidationStatus"] == "SUCCESS"
    got = acm.get_certificate(CertificateArn=own)
    leaf = x509.load_pem_x509_certificate(got["Certificate"].encode())
    ca = x509.load_pem_x509_certificate(got["CertificateChain"].encode())
    leaf.verify_directly_issued_by(ca)
    assert ca.public_bytes(Encoding.PEM) == \
        fast.cloud.ca.cert_path.read_bytes()
    # The same request again (same token): the same certificate.
    again = [acm.request_certificate(DomainName="api.example.com", IdempotencyToken="t1")[
        "CertificateArn"] for _ in range(2)]
    assert again[0] == again[1]
    pending = acm.describe_certificate(CertificateArn=again[0])["Certificate"]
    assert pending["Status"] == "PENDING_VALIDATION" and "NotAfter" not in pending
    record = pending["DomainValidationOptions"][0]["ResourceRecord"]
    assert record["Type"] == "CNAME" and record["Name"].endswith(".api.example.com.")
    assert code(acm.get_certificate, CertificateArn=again[0]) == "RequestInProgressException"
    # The cloud's CA as a private CA: any name, at once.
    authority = "arn:aws:acm-pca:gureum-1:000000000001:certificate-authority/gureum"
    private = acm.request_certificate(DomainName="api.example.com",
                                      CertificateAuthorityArn=authority)["CertificateArn"]
    assert acm.describe_certificate(CertificateArn=private)["Certificate"]["Type"] == "PRIVATE"
    assert code(acm.request_certificate, DomainName="x.example.com",
                CertificateAuthorityArn=authority.replace("gureum", "other")) == \
        "ResourceNotFoundException"
    assert code(acm.request_certificate, DomainName="not a name") == \
        "InvalidDomainValidationOptionsException"
    assert code(acm.request_certificate, DomainName="a.example.com",
                KeyAlgorithm="DSA_1024") == "ValidationException"
    for arn in (own, again[0], private):
        acm.delete_certificate(CertificateArn=arn)
