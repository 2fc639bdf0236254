"""snowmux reference peers: the sender (audio node) and the receiver (bot side)."""
