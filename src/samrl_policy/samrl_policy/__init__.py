"""Actor, Q function and residual policy (paper Sec. III-C, III-D)."""
