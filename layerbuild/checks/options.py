"""`# check=skip=A,B|all;error=true`: which rules run and whether a warning fails the build.

The syntax and its merging are BuildKit's (linter.go ParseLintOptions, WithMergedConfig): the
file-wide options come from the `check` directive, or, when given, from the
`BUILDKIT_DOCKERFILE_CHECK` build arg, which replaces the directive entirely. A `# check=`
comment right above an instruction adds skips for that instruction only (its first check
comment counts, up to the first blank; an unreadable one is ignored); `error=` there has no
effect, as in BuildKit, where only the file-wide setting fails a build.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

CHECK_BUILD_ARG = "BUILDKIT_DOCKERFILE_CHECK"
_COMMENT_DIRECTIVE = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})


@dataclass(frozen=True)
class CheckOptions:
    """What the `# check=` directive and --check options ask: rules skipped, warnings as errors."""

    skip_all: bool = False
    skip: frozenset[str] = frozenset()
    error: bool = False

    def skips(self, rule: str) -> bool:
        return self.skip_all or rule in self.skip

    def merged(self, other: CheckOptions) -> CheckOptions:
        return CheckOptions(self.skip_all or other.skip_all, self.skip | other.skip, self.error)


def parse_check_options(text: str) -> CheckOptions:
    """`skip=...;error=...` (both optional); ValueError naming the bad part."""
    text = text.strip()
    if not text:
        return CheckOptions()
    skip_all, skip, error = False, frozenset[str](), False
    for part in text.split(";", 2):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"invalid check option {part!r}")
        key, value = key.strip(), value.strip()
        if key == "skip":
            skip_all = value == "all"
            skip = frozenset() if skip_all else frozenset(r.strip() for r in value.split(","))
        elif key == "experimental":
            continue  # BuildKit's experimental rules are not implemented: nothing to enable
        elif key == "error":
            error = _parse_bool(value, part)
        else:
            raise ValueError(f"invalid check option {key!r}")
    return CheckOptions(skip_all, skip, error)


def _parse_bool(value: str, part: str) -> bool:
    # Go's strconv.ParseBool, which BuildKit uses
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"failed to parse check option {part!r}: {value!r} is not true or false")


def options_from_comments(comments: Iterable[str]) -> CheckOptions | None:
    """The options of the first `check=` among an instruction's comments (text after `#`)."""
    for comment in comments:
        match = _COMMENT_DIRECTIVE.match(comment)
        if match is None or match.group(1).lower() != "check":
            continue
        try:
            return parse_check_options(match.group(2).split(" ", 1)[0])
        except ValueError:
            return None
    return None
