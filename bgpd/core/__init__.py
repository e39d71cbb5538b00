"""The BGP session core (sans-IO): RFC 4271 §8 FSM, OPEN negotiation, collision detection.

- `bgpd.core.events`: the FSM states and the 28 numbered events of RFC 4271 §8.1.
- `bgpd.core.effects`: what the core asks its shell to do, and why a session went down.
- `bgpd.core.negotiation`: local OPEN, checks of the peer's OPEN, capability intersection.
- `bgpd.core.fsm`: `Session`, the per-peer FSM driven by a transition table.
- `bgpd.core.peer`: `PeerCore`, the connections of one peer and §6.8 collision detection.
- `bgpd.core.reload`: the per-field reload matrix (hot / soft / reset).
"""
