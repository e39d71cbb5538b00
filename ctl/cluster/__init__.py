"""`tabbyctl cluster`: a multi-process Tabby cluster on one machine."""
