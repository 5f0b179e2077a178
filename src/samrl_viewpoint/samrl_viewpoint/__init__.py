"""Next-best-view node moving the camera arm along dQ/dP (paper Sec. III-C)."""
