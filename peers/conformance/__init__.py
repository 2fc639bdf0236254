"""Property-based conformance harnesses for other snowmux receivers and senders."""
