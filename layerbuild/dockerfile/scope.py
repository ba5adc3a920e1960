"""Which ARG and ENV values are visible where: Docker's scoping rules, as plain data.

The rules (Dockerfile reference "ARG" and "Predefined ARGs"; BuildKit `dispatchArg`):

- ARGs before the first FROM are *global*: usable in FROM lines only. A stage sees one only after
  redeclaring it with `ARG NAME` (no default), which takes the global value.
- An ARG's value is the `--build-arg` override if one is given, else its default (expanded with
  what is visible at that point, pair by pair, so `ARG A=1 B=$A` gives B=1), else the global
  value, else the value the name already has in the stage (BuildKit's `dispatchArg` leaves the
  variable alone then), else it is declared but unset.
- A stage built `FROM` another stage inherits that stage's ARGs with their values, and through
  it those of its ancestors (BuildKit copies `dispatchState.buildArgs` and the state's env into
  the child, moby/buildkit#5381). The child's own ARG or ENV of the same name overrides as above;
  a `--build-arg` reaches an inherited ARG through the parent's declaration.
- ENV wins over an ARG of the same name, whichever came first. (This is what the Dockerfile
  reference documents and what the classic builder does; BuildKit lets an ARG declared *after*
  an ENV shadow it, a corner we do not copy.) The base image's ENV counts as ENV.
- The proxy variables (HTTP_PROXY, ..., all_proxy) given as build args reach RUN without an ARG,
  each under its upper- and lower-case name (BuildKit's `ProxyEnv`), are not usable in expansion
  and are left out of the RUN's cache key and of history. Declared with `ARG HTTP_PROXY`, one is
  an ordinary ARG again: expanded, keyed.
- BuildKit's platform args (TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT and the BUILD*
  ones) are set in the global scope automatically; a stage sees them after `ARG TARGETARCH`.

`VarScope` is one stage's view while the executor walks it; `global_arg_values` is the view of
FROM lines; `unused_build_args` lists overrides nothing declared (Docker warns about them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from layerbuild.dockerfile.expand import expansion_error
from layerbuild.dockerfile.instructions import Arg
from layerbuild.dockerfile.parser import Dockerfile, Stage
from layerbuild.dockerfile.shell import expand_word
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.errors import ShellExpansionError
from layerbuild.image.descriptor import Platform

# Docker's predefined proxy args (reference "Predefined ARGs")
PROXY_ARGS = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)
# BuildKit matches them in any letter case (`strings.EqualFold` in proxyEnvFromBuildArgs)
_PROXY_NAMES = frozenset(name.lower() for name in PROXY_ARGS)
# build args that are consumed by the builder itself rather than by an ARG: never "unused"
BUILDER_ARGS = frozenset({"SOURCE_DATE_EPOCH", "BUILDKIT_DOCKERFILE_CHECK"})


def platform_arg_values(
    platform: Platform | None, build_platform: Platform | None = None
) -> dict[str, str]:
    """TARGET* and BUILD* values; the build platform defaults to the target one.

    Empty when no platform is given: the caller (which knows the host) decides the default.
    """
    build = build_platform or platform
    values: dict[str, str] = {}
    for prefix, plat in (("TARGET", platform), ("BUILD", build)):
        if plat is None:
            continue
        values[f"{prefix}PLATFORM"] = str(plat)
        values[f"{prefix}OS"] = plat.os
        values[f"{prefix}ARCH"] = plat.architecture
        values[f"{prefix}VARIANT"] = plat.variant or ""
    return values


def global_arg_values(
    dockerfile: Dockerfile,
    build_args: Mapping[str, str],
    platform: Platform | None = None,
    *,
    build_platform: Platform | None = None,
) -> dict[str, str | None]:
    """Values of the global ARGs (and platform args) for expanding FROM lines.

    None marks a global ARG declared without default or override. DockerfileError if a default
    cannot be expanded.
    """
    values: dict[str, str | None] = dict(platform_arg_values(platform, build_platform))
    for instr in dockerfile.global_args:
        for name, default in instr.pairs:
            if name in build_args:
                values[name] = build_args[name]
            elif default is not None:
                env = _defined(values)
                values[name] = _expand_default(instr, default, env, dockerfile)
            else:
                # `ARG TARGETARCH` before FROM just names an automatic arg: keep its value
                values[name] = values.get(name)
    return values


def unused_build_args(
    dockerfile: Dockerfile,
    build_args: Mapping[str, str],
    stages: Iterable[Stage] | None = None,
) -> list[str]:
    """Names in `build_args` that no ARG declares (in `stages`, default all), in given order.

    Proxy args and SOURCE_DATE_EPOCH are consumed without an ARG and never listed.
    """
    declared = {name for instr in dockerfile.global_args for name, _ in instr.pairs}
    for stage in dockerfile.stages if stages is None else stages:
        for instr in stage.instructions:
            if isinstance(instr, Arg):
                declared.update(name for name, _ in instr.pairs)
    ignored = declared | BUILDER_ARGS
    return [name for name in build_args if name not in ignored and not is_proxy_arg(name)]


def is_proxy_arg(name: str) -> bool:
    """Whether `name` is one of the predefined proxy args (in any letter case, as BuildKit)."""
    return name.lower() in _PROXY_NAMES


def proxy_env(build_args: Mapping[str, str]) -> dict[str, str]:
    """The proxy build args as a RUN sees them: each under both its upper- and lower-case name
    (what BuildKit's executor does with `ProxyEnv`); of two spellings given, the one sorting
    last (the lower-case one) wins, as in BuildKit."""
    values = {name.lower(): build_args[name] for name in sorted(build_args) if is_proxy_arg(name)}
    return {spelling: v for low, v in values.items() for spelling in (low.upper(), low)}


class VarScope:
    """The variables of one stage, updated as the executor walks its instructions."""

    def __init__(
        self,
        global_args: Mapping[str, str | None],
        build_args: Mapping[str, str],
        image_env: Mapping[str, str],
        inherited: Mapping[str, str | None] | None = None,
    ) -> None:
        self._global = dict(global_args)
        self._build_args = dict(build_args)
        self._env = dict(image_env)  # image ENV, then the stage's ENV instructions on top
        # the parent stage's ARGs, then those declared in this stage, in declaration order
        self._args: dict[str, str | None] = dict(inherited or {})

    @classmethod
    def for_stage(
        cls,
        global_args: Mapping[str, str | None],
        build_args: Mapping[str, str],
        image_env: Mapping[str, str],
        inherited: Mapping[str, str | None] | None = None,
    ) -> VarScope:
        """A fresh scope for a stage whose base image has `image_env`; `inherited` is the
        `args()` of the stage it is built `FROM` (None for an image or scratch)."""
        return cls(global_args, build_args, image_env, inherited)

    def declare_arg(self, name: str, default: str | None) -> None:
        """`ARG name[=default]`; `default` must already be expanded (see `apply_arg`)."""
        if name in self._build_args:
            self._args[name] = self._build_args[name]
        elif default is not None:
            self._args[name] = default
        elif self._global.get(name) is not None:
            self._args[name] = self._global[name]
        else:
            # BuildKit sets no value then, so one the name already has (inherited from the
            # parent stage, or an earlier ARG) stays
            self._args[name] = self._args.get(name)

    def apply_arg(
        self, instr: Arg, *, escape: str = "\\", source: DockerfileSource | None = None
    ) -> None:
        """Declare every pair of `instr` in order, expanding each default only when it is used.

        An overridden default is never expanded (so a broken one does not fail the build, as in
        BuildKit); each default sees the pairs before it. DockerfileError on a bad default.
        """
        for name, default in instr.pairs:
            if default is not None and name not in self._build_args:
                try:
                    default = expand_word(default, self.expansion_env(), escape=escape)
                except ShellExpansionError as exc:
                    raise expansion_error(instr, exc, source) from None
            self.declare_arg(name, default)

    def set_env(self, key: str, value: str) -> None:
        """`ENV key=value` (value already expanded)."""
        self._env[key] = value

    def expansion_env(self) -> dict[str, str]:
        """What `${...}` in this stage's instructions sees: declared ARGs, then ENV over them."""
        return {**_defined(self._args), **self._env}

    def run_env(self) -> dict[str, str]:
        """The environment of a RUN: proxy build args, declared ARGs, then ENV over them."""
        return {**proxy_env(self._build_args), **self.expansion_env()}

    def keyed_env(self) -> dict[str, str]:
        """The part of `run_env` a RUN's cache key names: all of it but the proxy build args
        no ARG declares (a declared one, or one set by ENV, is an ordinary variable)."""
        return self.expansion_env()

    def args(self) -> dict[str, str | None]:
        """The ARGs visible in this stage (inherited ones included) with their values as
        declared, None for unset: what a stage built `FROM` this one inherits."""
        return dict(self._args)


def _defined(values: Mapping[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def _expand_default(instr: Arg, default: str, env: Mapping[str, str], df: Dockerfile) -> str:
    try:
        return expand_word(default, env, escape=df.escape)
    except ShellExpansionError as exc:
        raise expansion_error(instr, exc, df.source) from None
