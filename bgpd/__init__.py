"""tabby-bgpd: the BGP speaker (BIRD's job in Calico)."""
