"""The nft state file: a table felixd wrote survives a restart as (listing, table), and a state
file that does not parse costs one rewrite, never an error (felixd/nft.py)."""

from __future__ import annotations

from pathlib import Path

from felixd.nft import NftBackend, table_from_json, table_to_json
from felixd.plan import NftTable, PlannerState, Pool, plan


def nat_table() -> NftTable:
    state = PlannerState("n1")
    state.set(Pool("a", "10.244.0.0/16", nat_outgoing=True))
    state.set(Pool("b", "10.245.0.0/16"))
    tables = list(plan(state).nft_tables.values())
    assert len(tables) == 1
    return tables[0]


def test_table_json_round_trip() -> None:
    table = nat_table()
    assert table_from_json(table_to_json(table)) == table


def test_state_file_round_trip_and_garbage(tmp_path: Path) -> None:
    table = nat_table()
    path = tmp_path / "nft.json"
    first = NftBackend(nft="/nonexistent/nft", state_file=path)
    first.applied[table.key] = ("listing", table)
    first._save()
    assert NftBackend(nft="/nonexistent/nft", state_file=path).applied == first.applied
    path.write_text('[{"listing": 1, "table": {"family": "inet"}}]')
    assert NftBackend(nft="/nonexistent/nft", state_file=path).applied == {}
    # nft missing: reading owned tables finds none, writing one reports ENOENT.
    backend = NftBackend(nft="/nonexistent/nft")
    assert backend.tables(lambda family, name: True) == {}
    assert backend.replace(table) is not None
