"""A security group's members change an instance's firewall by set elements, in the
kernel: the table stays (its handle is the same), a changed rule replaces it whole, and
a netns made again under the same name gets a whole table."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from gureum.agent import firewall
from gureum.agent.contract import Firewall, FirewallRule
from gureum.errors import NetnsMissing


def _made() -> Iterator[str]:
    name = f"gureum-t{secrets.token_hex(4)}"  # this test's own
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
        firewall.forget(name)


netns = pytest.fixture(_made)
other_netns = pytest.fixture(_made)


def _nft(name: str, *args: str) -> dict:
    out = subprocess.run(["ip", "netns", "exec", name, "nft", "-j", *args],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _handle(name: str) -> int:
    return next(item["table"]["handle"] for item in _nft(name, "list", "tables")["nftables"]
                if "table" in item and item["table"]["name"] == firewall.TABLE)


def _members(name: str, set_name: str) -> set[str]:
    found = _nft(name, "list", "set", "inet", firewall.TABLE, set_name)["nftables"]
    return {e for item in found if "set" in item for e in item["set"].get("elem", [])}


def _group(*members: str) -> Firewall:
    return Firewall(ingress=(FirewallRule("-1", -1, -1, members),),
                    egress=(FirewallRule("-1", -1, -1, ("0.0.0.0/0",)),), resolver="10.0.0.2")


def test_members_change_by_elements_and_structure_by_table(netns: str) -> None:
    firewall.apply(netns, _group("10.0.0.5", "10.0.0.6"))
    handle = _handle(netns)
    assert _members(netns, "peers0") == {"10.0.0.5", "10.0.0.6"}
    firewall.apply(netns, _group("10.0.0.5", "10.0.0.7"))  # one left, one joined
    assert _members(netns, "peers0") == {"10.0.0.5", "10.0.0.7"}
    assert _handle(netns) == handle, "only the set's elements changed"
    firewall.apply(netns, _group())  # the last members left: the rule matches nothing
    assert _members(netns, "peers0") == set()
    assert _handle(netns) == handle
    wider = Firewall(ingress=(FirewallRule("tcp", 22, 22, ("10.0.0.0/24",)),), egress=())
    firewall.apply(netns, wider)  # another rule: a new table
    assert _handle(netns) != handle
    assert "peers0" not in json.dumps(_nft(netns, "list", "ruleset"))


def test_a_netns_made_again_gets_a_whole_table(netns: str) -> None:
    firewall.apply(netns, _group("10.0.0.5"))
    subprocess.run(["ip", "netns", "del", netns], check=True)
    subprocess.run(["ip", "netns", "add", netns], check=True)
    firewall.apply(netns, _group("10.0.0.5", "10.0.0.8"))  # not a change of a table it lacks
    assert _members(netns, "peers0") == {"10.0.0.5", "10.0.0.8"}


def test_many_in_one_call_and_a_missing_netns_fails_alone(netns: str, other_netns: str) -> None:
    missing = f"gureum-t{secrets.token_hex(4)}"  # never made
    failed = firewall.apply_many({netns: _group("10.0.0.5"), missing: _group("10.0.0.5"),
                                  other_netns: _group("10.0.0.5", "10.0.0.9")})
    assert list(failed) == [missing] and isinstance(failed[missing], NetnsMissing)
    assert _members(netns, "peers0") == {"10.0.0.5"}
    assert _members(other_netns, "peers0") == {"10.0.0.5", "10.0.0.9"}
    handles = (_handle(netns), _handle(other_netns))
    assert firewall.apply_many({netns: _group("10.0.0.6"), other_netns: _group("10.0.0.6")}) == {}
    assert _members(netns, "peers0") == _members(other_netns, "peers0") == {"10.0.0.6"}
    assert (_handle(netns), _handle(other_netns)) == handles, "only the sets' elements changed"
