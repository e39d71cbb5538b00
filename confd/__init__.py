"""tabby-confd: renders a node's BGP configuration from store resources."""
