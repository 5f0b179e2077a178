"""A minimal two-node graph (talker/listener) exercising topics, images, a service and tf across processes."""
