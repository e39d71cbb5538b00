"""Daemon runtime shared by every Tabby daemon: config, logging, sd_notify, signals, metrics."""
