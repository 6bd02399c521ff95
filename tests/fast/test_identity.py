"""STS GetCallerIdentity and IAM GetUser: what Ansible and Terraform ask first."""

from __future__ import annotations

from helpers import error_code as code

from gureum.testing_inprocess import FastCloud


def test_caller_identity_names_the_keys_account(fast: FastCloud) -> None:
    account = fast.running.account_id
    who = fast.client("sts").get_caller_identity()
    assert (who["Account"], who["UserId"], who["Arn"]) == (
        account, account, f"arn:aws:iam::{account}:root")
    other = fast.new_account("identity-other")
    other_sts = fast.client("sts", *other._request_signer._credentials.get_frozen_credentials()[:2])
    assert other_sts.get_caller_identity()["Account"] != account


def test_iam_get_user_answers_for_the_caller(fast: FastCloud) -> None:
    iam = fast.client("iam")
    user = iam.get_user()["User"]
    assert user["Arn"] == f"arn:aws:iam::{fast.running.account_id}:root"
    assert user["CreateDate"]
    assert code(iam.get_user, UserName="alice") == "NoSuchEntity"
