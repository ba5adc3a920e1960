"""CopyIgnoredFile: a COPY or ADD of a context path that .dockerignore excludes (BuildKit's
validateCopySourcePath). As in BuildKit, only when the rules have no `!` exception (an excluded
directory with a re-included file inside cannot be judged from the path alone), only for
sources from the context (not `--from`, heredocs, URLs or git), after expansion; the context
root (`.`) counts as excluded only under `*`, `**` or `**/*`."""

from __future__ import annotations

from collections.abc import Iterator

from layerbuild.checks.rules import Finding
from layerbuild.context.gitref import is_git_url
from layerbuild.context.ignore import IgnoreRules, go_clean
from layerbuild.dockerfile import instructions as ins

_ROOT_PATTERNS = frozenset({"*", "**", "**/*"})


def ignored_sources(
    instr: ins.Copy | ins.Add, expanded: ins.Copy | ins.Add, ignore: IgnoreRules | None
) -> Iterator[Finding]:
    """`expanded`: `instr` with its variables expanded (what the build copies)."""
    if ignore is None or not ignore.patterns or expanded.from_stage is not None:
        return
    if any(p.exclusion for p in ignore.patterns):
        return
    verb = "Add" if isinstance(instr, ins.Add) else "Copy"
    heredocs = {f"<<{doc.name}" for doc in expanded.heredocs}
    for src in expanded.sources:
        if src in heredocs or _remote(src, instr):
            continue
        path = go_clean(src)
        if path in (".", "/"):
            excluded = any(p.text in _ROOT_PATTERNS for p in ignore.patterns)
        else:
            excluded = ignore.matches(path)
        if excluded:
            yield Finding("CopyIgnoredFile", f'Attempting to {verb} file "{path}" that is '
                          "excluded by .dockerignore", instr.span, instr.span.start_line)


def _remote(src: str, instr: ins.Copy | ins.Add) -> bool:
    if not isinstance(instr, ins.Add):
        return False
    return src.startswith(("http://", "https://")) or is_git_url(src)
