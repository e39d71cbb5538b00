"""tabbyctl: resources as YAML, node status, store and cluster commands."""
