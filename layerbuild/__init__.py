"""layerbuild: a daemonless container image builder (Dockerfile + context -> OCI image)."""

from layerbuild import dataclasscode

__version__ = "0.1.0"

dataclasscode.install()  # before any of our dataclasses is made (see its docstring)
