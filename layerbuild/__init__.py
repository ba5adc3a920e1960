"""layerbuild: a daemonless container image builder (Dockerfile + context -> OCI image)."""

__version__ = "0.1.0"
