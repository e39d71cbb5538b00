"""The BGP-4 wire codec: bytes to typed messages and back, with RFC 7606 error classes."""
