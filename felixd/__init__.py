"""tabby-felixd: programs routes, tunnels and policy into the kernel."""
