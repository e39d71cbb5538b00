"""confd's pure core: resources in, one node's BGP plan out, rendered for tabby-bgpd or BIRD 2."""
