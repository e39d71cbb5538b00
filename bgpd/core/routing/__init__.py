"""Routing (pure): paths, the decision process, policy, export rules and the RIBs (RFC 4271 §9, RFC 4456)."""
