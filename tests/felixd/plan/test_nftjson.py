"""natOutgoing table → libnftables JSON (libnftables-json(5)), checked by the real `nft`."""

from __future__ import annotations

import json
import subprocess

import pytest

from felixd.plan import FelixConfig, Pool, plan
from felixd.plan.model import NftChain, NftMatch, NftRule, NftTable
from felixd.plan.nftjson import delete_table, replace_table
from tests.felixd.plan.world import world


def _nat_table() -> NftTable:
    state = world(nat=True, config=FelixConfig(nat_exclusions=("10.0.0.0/8",)))
    state.set(Pool("v6", "fd00:10::/64", nat_outgoing=True))
    return plan(state).nft_tables[("inet", "tabby-nat")]


def test_replace_is_add_delete_add_then_contents_in_one_document() -> None:
    doc = replace_table(_nat_table())
    assert isinstance(doc, dict)
    commands = doc["nftables"]
    assert isinstance(commands, list)
    ref = {"table": {"family": "inet", "name": "tabby-nat"}}
    assert commands[:4] == [
        {"metainfo": {"json_schema_version": 1}},
        {"add": ref},
        {"delete": ref},
        {"add": ref},
    ]
    assert commands[4] == {
        "add": {
            "set": {
                "family": "inet",
                "table": "tabby-nat",
                "name": "masq-pools-v4",
                "type": "ipv4_addr",
                "flags": ["interval"],
                "elem": [{"prefix": {"addr": "10.244.0.0", "len": 16}}],
            }
        }
    }
    assert commands[-2] == {
        "add": {
            "rule": {
                "family": "inet",
                "table": "tabby-nat",
                "chain": "postrouting",
                "expr": [
                    {
                        "match": {
                            "op": "==",
                            "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                            "right": "@masq-pools-v4",
                        }
                    },
                    {
                        "match": {
                            "op": "!=",
                            "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                            "right": "@no-nat-dst-v4",
                        }
                    },
                    {"masquerade": None},
                ],
                "comment": "natOutgoing",
            }
        }
    }


def test_untranslatable_rules_are_refused() -> None:
    bad = NftTable(
        "inet",
        "tabby-x",
        (),
        (NftChain("c", (NftRule((NftMatch("tcp dport", "==", "22"),), "accept"),)),),
    )
    with pytest.raises(ValueError, match="tcp dport"):
        replace_table(bad)


def _nft_in_fresh_netns(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    # A private network namespace: nothing the test does reaches the host's ruleset.
    return subprocess.run(
        ["unshare", "--net", "sh", "-c", f"nft {' '.join(args)} -f - && nft list ruleset"],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.root
@pytest.mark.netns
@pytest.mark.debian("nft")
def test_real_nft_accepts_the_json_and_the_text() -> None:
    table = _nat_table()
    done = _nft_in_fresh_netns(json.dumps(replace_table(table)), "-j")
    assert done.returncode == 0, done.stderr
    assert "ip saddr @masq-pools-v4 ip daddr != @no-nat-dst-v4 masquerade" in done.stdout
    assert "ip6 saddr @masq-pools-v6 ip6 daddr != @no-nat-dst-v6 masquerade" in done.stdout
    text = _nft_in_fresh_netns(table.render())
    assert text.returncode == 0, text.stderr
    assert "10.0.0.0/8" in text.stdout
    # Replace over an existing table (the delete half of the idiom), then delete it.
    replace_doc = json.dumps(replace_table(table))
    delete_doc = json.dumps(delete_table("inet", "tabby-nat"))
    steps = subprocess.run(
        [
            "unshare",
            "--net",
            "sh",
            "-c",
            'printf %s "$1" | nft -j -f - && printf %s "$1" | nft -j -f - && '
            'nft list ruleset && echo ---- && printf %s "$2" | nft -j -f - && nft list ruleset',
            "sh",
            replace_doc,
            delete_doc,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert steps.returncode == 0, steps.stderr
    before, after = steps.stdout.split("----")
    assert before.count("table inet tabby-nat") == 1
    assert "tabby-nat" not in after
