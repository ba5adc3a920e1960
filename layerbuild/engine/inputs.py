"""What a build reads before its first step: the Dockerfile and the context's ignore rules,
with errors that say which file and what to pass instead."""

from __future__ import annotations

from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.rootpath import read_in_root
from layerbuild.context.select import load_ignore
from layerbuild.dockerfile.parser import Dockerfile, parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.engine.options import BuildOptions
from layerbuild.errors import ContextError


def read_dockerfile(opts: BuildOptions, *, unique_stage_names: bool = True) -> Dockerfile:
    """The parsed Dockerfile: `-f PATH`, the text given inline, or CONTEXT/Dockerfile.

    As BuildKit reads it (frontend/dockerui/config.go: a snapshot of the Dockerfile's
    directory, the file resolved there with fs.RootPath), a Dockerfile that is a symlink is
    followed inside its own directory only: a link that leaves it names nothing."""
    path = opts.dockerfile or opts.context / "Dockerfile"
    if opts.dockerfile_text is not None:
        return parse_dockerfile(DockerfileSource("Dockerfile", opts.dockerfile_text),
                                unique_stage_names=unique_stage_names)
    try:
        data = read_in_root(path.parent, path.name)
        if data is None:
            raise ContextError(
                f"no Dockerfile at {path}",
                hint="pass -f PATH to name the Dockerfile, or run in the context directory; "
                "it must be a regular file, or a symbolic link to one in the same directory",
            )
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ContextError(f"cannot read the Dockerfile {path}: {e}") from None
    return parse_dockerfile(DockerfileSource(str(path), text),
                            unique_stage_names=unique_stage_names)


def context_ignore(opts: BuildOptions) -> IgnoreRules | None:
    """The context's .dockerignore rules (or the Dockerfile's own `<name>.dockerignore`)."""
    if not opts.context.is_dir():
        raise ContextError(
            f"the build context {opts.context} is not a directory",
            hint="pass the directory that holds the files COPY and ADD read",
        )
    dockerfile = opts.dockerfile if opts.dockerfile_text is None else None
    return load_ignore(opts.context, dockerfile)
