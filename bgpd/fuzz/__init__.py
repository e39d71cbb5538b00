"""`tabbyctl bgp fuzz`: hypothesis-driven conformance fuzzing of a live BGP speaker.

- `verdict`: pure pass/fail logic over what a target did (RFC 4271 §5, §6; RFC 7606);
- `target`: target files (TOML) and `address[:port]` targets;
- `speaker`: a minimal asyncio BGP client on Tabby's codec, used as fuzzer and monitor;
- `engine`: runs hypothesis over the strategies of `bgpd.wire.strategies`, shrinks failures,
  and builds the report with replay commands.

Requires hypothesis (the `fuzz` extra); importing this package itself does not.
"""

PROPERTIES = ("propagation", "ipv6", "add-path", "header", "open", "update")
"""The properties `tabbyctl bgp fuzz` checks, in run order (see `bgpd.fuzz.cases`); `ipv6`
only against a target whose file lists the ipv6 family, `add-path` only with `add_path`."""
