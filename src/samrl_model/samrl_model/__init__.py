"""Differentiable model M (nimblephysics + Mitsuba 3) and the Real2Sim model-update service (paper Sec. III-A, III-B)."""
