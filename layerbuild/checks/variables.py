"""UndefinedVar: a `$NAME` that no ARG, ENV or base image defines where it is used.

BuildKit reports a name its expansion did not find (dispatch, reportUnmatchedVariables) unless
an ARG of the stage declares it (even without a value); it looks at the fields it expands (not
RUN, CMD, ENTRYPOINT: their shell expands those), and at ARG defaults that no --build-arg
replaces. PATH always counts as defined, as BuildKit gives every image a default one. The walk
expands with the same scope rules as the build (dockerfile/scope.VarScope).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from layerbuild.checks.rules import Finding
from layerbuild.checks.suggest import closest
from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.expand import expand
from layerbuild.dockerfile.parser import Dockerfile
from layerbuild.dockerfile.scope import VarScope
from layerbuild.dockerfile.shell import expand_word
from layerbuild.errors import DockerfileError, ShellExpansionError

# build args BuildKit consumes itself and never sets in the environment
_NON_ENV = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})
_I = TypeVar("_I", ins.Copy, ins.Add, ins.Workdir, ins.Expose)
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class _Recording(Mapping[str, str]):
    """An environment that remembers the names looked up in it and not found."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.missing: list[str] = []

    def __getitem__(self, name: str) -> str:
        try:
            return self.env[name]
        except KeyError:
            if name not in self.missing:
                self.missing.append(name)
            raise

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


class UndefinedVars:
    """One stage's variables while its instructions are walked in order."""

    def __init__(
        self,
        dockerfile: Dockerfile,
        build_args: Mapping[str, str],
        global_args: Mapping[str, str | None],
        image_env: Mapping[str, str],
        scope: VarScope | None = None,
    ) -> None:
        self.dockerfile = dockerfile
        self.build_args = build_args
        self.global_args = global_args
        env = {"PATH": _DEFAULT_PATH, **image_env}
        self.scope = scope or VarScope.for_stage(global_args, build_args, env)

    def child(self) -> UndefinedVars:
        """The variables a stage built FROM this one starts with."""
        # the parent's ARG values count as its environment here: which of the two a name is
        # does not change whether it is defined
        scope = VarScope.for_stage(self.global_args, self.build_args,
                                   self.scope.expansion_env(), self.scope.args())
        return UndefinedVars(self.dockerfile, self.build_args, self.global_args, {}, scope)

    def visit(self, instr: ins.Instruction) -> Iterator[Finding]:
        """Findings for `instr`, then the scope updated as the build would update it."""
        recording = _Recording(self.scope.expansion_env())
        expanded: Any = instr
        if isinstance(instr, ins.Arg):
            self._declare(instr, recording)
        else:
            try:
                expanded = expand(instr, recording, escape=self.dockerfile.escape)
            except DockerfileError:
                return  # the build reports it
        declared = self.scope.args()
        for name in recording.missing:
            if name in declared or name in _NON_ENV:
                continue
            hint = closest(name, recording.env)
            message = f"Usage of undefined variable '${name}'"
            yield Finding("UndefinedVar", message + (f" (did you mean ${hint}?)" if hint else ""),
                          instr.span, instr.span.start_line)
        if isinstance(expanded, ins.Env):
            for key, value in expanded.pairs:
                self.scope.set_env(key, value)

    def _declare(self, instr: ins.Arg, recording: _Recording) -> None:
        for name, default in instr.pairs:
            value = default
            if default is not None and name not in self.build_args:
                recording.env = self.scope.expansion_env()
                try:
                    value = expand_word(default, recording, escape=self.dockerfile.escape)
                except ShellExpansionError:
                    value = None
            self.scope.declare_arg(name, value)

    def expanded(self, instr: _I) -> _I:
        """`instr` expanded with the stage's variables (unchanged if that fails)."""
        try:
            done = expand(instr, self.scope.expansion_env(), escape=self.dockerfile.escape)
        except DockerfileError:
            return instr
        assert isinstance(done, type(instr))
        return done
