"""What a build reads before its first step: the Dockerfile and the context's ignore rules,
with errors that say which file and what to pass instead."""

from __future__ import annotations

from layerbuild.build.options import BuildOptions
from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.select import load_ignore
from layerbuild.dockerfile.parser import Dockerfile, parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.errors import ContextError


def read_dockerfile(opts: BuildOptions) -> Dockerfile:
    """The parsed Dockerfile: `-f PATH`, the text given inline, or CONTEXT/Dockerfile."""
    path = opts.dockerfile or opts.context / "Dockerfile"
    if opts.dockerfile_text is not None:
        return parse_dockerfile(DockerfileSource("Dockerfile", opts.dockerfile_text))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContextError(
            f"no Dockerfile at {path}",
            hint="pass -f PATH to name the Dockerfile, or run in the context directory",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ContextError(f"cannot read the Dockerfile {path}: {e}") from None
    return parse_dockerfile(DockerfileSource(str(path), text))


def context_ignore(opts: BuildOptions) -> IgnoreRules | None:
    """The context's .dockerignore rules (or the Dockerfile's own `<name>.dockerignore`)."""
    if not opts.context.is_dir():
        raise ContextError(
            f"the build context {opts.context} is not a directory",
            hint="pass the directory that holds the files COPY and ADD read",
        )
    dockerfile = opts.dockerfile if opts.dockerfile_text is None else None
    return load_ignore(opts.context, dockerfile)
