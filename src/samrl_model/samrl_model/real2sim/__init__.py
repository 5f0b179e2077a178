"""Real2Sim (paper Sec. III-B): update the model's parameters so its renders match the camera."""
