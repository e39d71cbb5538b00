"""Tests of the BGP-4 wire codec (bgpd.wire)."""
