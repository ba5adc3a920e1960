"""Image references ("busybox", "localhost:5000/app:1", "repo@sha256:...") by Docker's rules.

The grammar is the one of distribution/reference (reference.go, regexp.go)::

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain "/"] path-component ["/" path-component]*
    domain           := host [":" port]      host: DNS-ish components, or [IPv6]
    path-component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag              := [\\w][\\w.-]{0,127}

and the first component is a registry only when it looks like one (it contains "." or ":", is
"localhost", or has an upper-case letter); otherwise the name lives on Docker Hub, and a
one-component Hub name is under "library/" (``busybox`` is ``docker.io/library/busybox``).

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from layerbuild.digest import is_digest
from layerbuild.errors import ExitCode, LayerbuildError

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
_OFFICIAL_PREFIX = "library/"
# names the Hub answers to besides docker.io; references to them mean docker.io
_HUB_ALIASES = frozenset({"index.docker.io", "registry-1.docker.io"})
_NAME_MAX = 255

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_HINT = (
    "a reference looks like name[:tag][@sha256:<64 hex>], e.g. busybox, app:1, "
    "localhost:5000/team/app:v2; repository names are lower case"
)


class InvalidReference(LayerbuildError):
    """An image name, tag or digest that does not follow Docker's naming rules."""

    reference = "invalid-reference"
    exit_code = ExitCode.USAGE


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed reference; `tag` is None only when a digest pins the image instead."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Fully qualified name without tag or digest: docker.io/library/busybox."""
        return f"{self.registry}/{self.repository}"

    @property
    def full_name(self) -> str:
        """Fully qualified reference: docker.io/library/busybox:latest."""
        return self.name + self._suffix()

    @property
    def familiar_name(self) -> str:
        """The short name people type: busybox, team/app, localhost:5000/app."""
        if self.registry != DEFAULT_REGISTRY:
            return self.name
        if self.repository.startswith(_OFFICIAL_PREFIX):
            rest = self.repository[len(_OFFICIAL_PREFIX) :]
            if "/" not in rest:
                return rest
        return self.repository

    @property
    def familiar(self) -> str:
        """The short name with tag and digest: busybox:latest, app@sha256:..."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag is not None else ""
        return out + (f"@{self.digest}" if self.digest is not None else "")

    def __str__(self) -> str:
        return self.full_name


def _split_domain(name: str) -> tuple[str, str]:
    """Registry and repository of a name, by distribution's splitDockerDomain rule."""
    first, sep, rest = name.partition("/")
    looks_like_host = (
        "." in first or ":" in first or first == "localhost" or first.lower() != first
    )
    if not sep or not looks_like_host:
        registry, remainder = DEFAULT_REGISTRY, name
    else:
        registry, remainder = first, rest
    if registry in _HUB_ALIASES:
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in remainder:
        remainder = _OFFICIAL_PREFIX + remainder
    return registry, remainder


def _fail(text: str, why: str) -> InvalidReference:
    return InvalidReference(f"invalid image reference {text!r}: {why}", hint=_HINT)


def _split_tag_digest(text: str) -> tuple[str, str | None, str | None]:
    name, at, digest = text.partition("@")
    if at and not is_digest(digest):
        raise _fail(text, f"{digest!r} is not a digest (expected sha256:<64 hex digits>)")
    tag: str | None = None
    # a ':' after the last '/' is a tag separator; before it, it is a registry port
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise _fail(
                text, f"tag {tag!r} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -"
            )
    return name, tag, (digest if at else None)


def _check_repository(text: str, registry: str, repository: str) -> None:
    if registry != DEFAULT_REGISTRY and not _DOMAIN.fullmatch(registry):
        raise _fail(text, f"registry {registry!r} is not a valid host[:port]")
    for component in repository.split("/"):
        if _PATH_COMPONENT.fullmatch(component):
            continue
        if component.lower() != component and _PATH_COMPONENT.fullmatch(component.lower()):
            raise _fail(text, "repository name must be lowercase")
        raise _fail(
            text,
            f"path component {component!r} must be lower-case letters and digits, "
            "separated by '.', '_', '__' or '-'",
        )


def parse_reference(text: str) -> Reference:
    """Parse and normalize a reference; a missing tag (and no digest) means ':latest'."""
    if not text or text != text.strip():
        raise _fail(text, "it is empty or has surrounding white space")
    name, tag, digest = _split_tag_digest(text)
    if not name:
        raise _fail(text, "the repository name is missing")
    if len(name) > _NAME_MAX:
        raise _fail(text, f"the name is longer than {_NAME_MAX} characters")
    registry, repository = _split_domain(name)
    _check_repository(text, registry, repository)
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry=registry, repository=repository, tag=tag, digest=digest)


def normalize_tag(name: str) -> str:
    """The short familiar form of a tag: 'app' -> 'app:latest', 'docker.io/library/x' -> 'x:latest'

    This is the key of local image names (index.json ref.name annotations), so that `app`,
    `app:latest` and `docker.io/library/app` all name the same image.
    """
    ref = parse_reference(name)
    if ref.digest is not None:
        raise InvalidReference(
            f"{name!r} names a digest, but a tag is needed here",
            hint="drop the '@sha256:...' part, e.g. use app:1",
        )
    return ref.familiar
