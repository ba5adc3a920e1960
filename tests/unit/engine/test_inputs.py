"""The Dockerfile a build reads: a symlink is followed inside the Dockerfile's directory only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerbuild.engine.inputs import read_dockerfile
from layerbuild.engine.options import BuildOptions
from layerbuild.errors import ContextError

TEXT = "FROM scratch\nLABEL from={}\n"


def _label(opts: BuildOptions) -> str:
    (stage,) = read_dockerfile(opts).stages
    return str(stage.instructions[0])


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "docker").mkdir(parents=True)
    (tmp_path / "outside.Dockerfile").write_text(TEXT.format("host"))
    (root / "docker" / "real.Dockerfile").write_text(TEXT.format("inside"))
    return root


def test_link_inside_the_context_is_followed(ctx: Path) -> None:
    os.symlink("docker/real.Dockerfile", ctx / "Dockerfile")
    assert "inside" in _label(BuildOptions(context=ctx))


def test_link_out_of_the_context_is_no_dockerfile(ctx: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside.Dockerfile", ctx / "Dockerfile")
    with pytest.raises(ContextError, match="no Dockerfile at"):
        read_dockerfile(BuildOptions(context=ctx))
    os.unlink(ctx / "Dockerfile")
    os.symlink("../outside.Dockerfile", ctx / "Dockerfile")  # `..` stops at the context
    with pytest.raises(ContextError, match="no Dockerfile at"):
        read_dockerfile(BuildOptions(context=ctx))


def test_named_dockerfile_link_stays_in_its_own_directory(ctx: Path) -> None:
    """-f docker/app.Dockerfile: its directory is the root, as BuildKit's `dockerfile` local
    source is; a link to ../Dockerfile.real names docker/Dockerfile.real."""
    (ctx / "Dockerfile.real").write_text(TEXT.format("context-root"))
    os.symlink("../Dockerfile.real", ctx / "docker" / "app.Dockerfile")
    with pytest.raises(ContextError, match="no Dockerfile at"):
        read_dockerfile(BuildOptions(context=ctx, dockerfile=ctx / "docker" / "app.Dockerfile"))
    os.symlink("real.Dockerfile", ctx / "docker" / "b.Dockerfile")
    opts = BuildOptions(context=ctx, dockerfile=ctx / "docker" / "b.Dockerfile")
    assert "inside" in _label(opts)
