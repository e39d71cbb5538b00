"""tabby-cni: the CNI plugin and block-based IPAM."""
