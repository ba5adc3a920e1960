""".dockerignore and COPY --exclude patterns with moby/patternmatcher semantics.

Docker's rules differ from gitignore in ways that bite (pathspec's gitignore mode gets all of
these wrong, which is why it is not used here):

- patterns are anchored at the context root: ``*.log`` excludes ``x.log`` but not ``sub/x.log``
  (write ``**/*.log`` for that); ``node_modules`` excludes only the top-level directory;
- every pattern is cleaned like Go's ``filepath.Clean`` (``./a``, ``a/``, ``a//b``, ``/a`` all
  mean ``a``), so a trailing ``/`` does not restrict a pattern to directories;
- a pattern that matches a directory excludes everything below it, because a path is also
  tested against each of its parent directories;
- the LAST pattern that matches a path (or one of its parents) decides, so ``!keep`` after
  ``*`` re-includes ``keep`` even inside an excluded directory.

Pure: no file access. ``select.load_ignore`` reads the file.
"""

from __future__ import annotations

import posixpath
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from layerbuild.errors import BadPattern, ContextError

_UTF8_BOM = "\ufeff"
# Characters that make a pattern more than a literal path (fsutil's patternChars).
_PATTERN_CHARS = frozenset("*[]?^\\")
# Regexp metacharacters that mean nothing in filepath.Match and must match literally.
_REGEX_LITERALS = frozenset(".+()|{}$")

MatchKind = Literal["exact", "prefix", "suffix", "regexp"]


def go_clean(path: str) -> str:
    """Go's filepath.Clean on a slash-separated path ('' becomes '.')."""
    cleaned = posixpath.normpath(path) if path else "."
    # normpath keeps a leading '//' (POSIX allows it to mean something); Go does not.
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


# --- Go path/filepath.Match ------------------------------------------------------------------


def go_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match: ``*`` and ``?`` never match ``/``; ``[...]``, ``[^...]``, ``\\``.

    Raises BadPattern for malformed patterns, also when the name fails to match early (Go checks
    the whole pattern since 1.16).
    """
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        if star:
            matched = False
            for i in range(len(name)):
                if name[i] == "/":
                    break
                rest = _match_chunk(chunk, name[i + 1 :])
                if rest is not None:
                    if not pattern and rest:
                        continue
                    name, matched = rest, True
                    break
            if matched:
                continue
        _check_rest(pattern)
        return False
    return not name


def _check_rest(pattern: str) -> None:
    while pattern:
        _, chunk, pattern = _scan_chunk(pattern)
        _match_chunk(chunk, "")


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern.startswith("*"):
        pattern, star = pattern[1:], True
    in_range = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 1
        elif ch == "[":
            in_range = True
        elif ch == "]":
            in_range = False
        elif ch == "*" and not in_range:
            break
        i += 1
    i = min(i, len(pattern))
    return star, pattern[:i], pattern[i:]


def _match_chunk(chunk: str, s: str) -> str | None:
    """Match chunk against the start of s; the unmatched rest of s, or None on mismatch."""
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        ch = chunk[0]
        if ch == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk, in_class = _match_class(chunk[1:], r)
            failed = failed or not in_class
        elif ch == "?":
            if not failed:
                failed = s[0] == "/"
                s = s[1:]
            chunk = chunk[1:]
        else:
            if ch == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern("trailing backslash")
            if not failed:
                failed = chunk[0] != s[0]
                s = s[1:]
            chunk = chunk[1:]
    return None if failed else s


def _match_class(chunk: str, r: str) -> tuple[str, bool]:
    negated = chunk.startswith("^")
    if negated:
        chunk = chunk[1:]
    matched = False
    nrange = 0
    while True:
        if chunk.startswith("]") and nrange > 0:
            chunk = chunk[1:]
            break
        lo, chunk = _class_char(chunk)
        hi = lo
        if chunk[0] == "-":
            hi, chunk = _class_char(chunk[1:])
        if r and lo <= r <= hi:
            matched = True
        nrange += 1
    return chunk, matched != negated


def _class_char(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise BadPattern("bad character class")
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern("bad escape in character class")
    if len(chunk) < 2:
        raise BadPattern("unterminated character class")
    return chunk[0], chunk[1:]


# --- patternmatcher.Pattern ------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """One cleaned pattern; ``exclusion`` is a ``!`` pattern (an exception that re-includes)."""

    text: str
    exclusion: bool
    kind: MatchKind
    regex: re.Pattern[str] | None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            # '**/foo' also matches 'foo' itself
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None

    def without_trailing_glob(self) -> str:
        text = self.text
        for tail in ("/**", "/*"):
            text = text.removesuffix(tail)
        return text


def compile_pattern(text: str, exclusion: bool) -> Pattern:
    """Translate like patternmatcher's compile: the same kinds, the same regexp."""
    regex = "^"
    kind: MatchKind = "exact"
    i = 0
    while i < len(text):
        i, fragment, kind = _translate_token(text, i, kind)
        regex += fragment
    compiled = None
    if kind == "regexp":
        with warnings.catch_warnings():
            # Go's RE2 takes '[[' literally; Python warns that it may not in future versions.
            warnings.simplefilter("ignore", FutureWarning)
            try:
                compiled = re.compile(regex + r"\Z")
            except re.error as exc:
                raise BadPattern(str(exc)) from exc
    return Pattern(text=text, exclusion=exclusion, kind=kind, regex=compiled)


def _translate_token(text: str, i: int, kind: MatchKind) -> tuple[int, str, MatchKind]:
    """One token of the pattern at i: (next index, regexp fragment, match kind so far)."""
    ch = text[i]
    first = i == 0
    i += 1
    if ch == "*" and text[i : i + 1] == "*":
        i += 1
        if text[i : i + 1] == "/":
            i += 1  # '**/' is treated as '**'
        if i < len(text):
            fragment, kind = "(.*/)?", "regexp"
        elif kind == "exact":
            fragment, kind = "", "prefix"
        else:
            fragment, kind = ".*", "regexp"
        return i, fragment, "suffix" if first else kind
    if ch == "*":
        return i, "[^/]*", "regexp"
    if ch == "?":
        return i, "[^/]", "regexp"
    if ch in _REGEX_LITERALS:
        return i, "\\" + ch, kind
    if ch == "\\":
        if i < len(text):
            return i + 1, _escaped(text, text[i]), "regexp"
        return i, "\\\\", kind
    if ch in "[]":
        return i, ch, "regexp"
    return i, ch, kind


def _escaped(pattern: str, ch: str) -> str:
    # Go hands '\x' to its regexp engine, where an escaped letter or digit is a character class
    # or an error; only escaped punctuation has a portable meaning (the character itself).
    if ch.isascii() and ch.isalnum():
        raise BadPattern(f"unsupported escape '\\{ch}' in {pattern!r}")
    return re.escape(ch)


# --- the rule set ------------------------------------------------------------------------------


def read_ignore_lines(text: str) -> list[str]:
    """ignorefile.ReadAll: the patterns of a .dockerignore file, normalised, in order."""
    patterns = []
    for lineno, line in enumerate(text.splitlines()):
        if lineno == 0:
            line = line.removeprefix(_UTF8_BOM)
        # comments are recognised before trimming, as Docker does: '  # x' is a pattern
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = go_clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append("!" + line if invert else line)
    return patterns


@dataclass(frozen=True)
class IgnoreRules:
    """An ordered pattern list; ``matches`` says whether a context path is excluded."""

    patterns: tuple[Pattern, ...]
    source: str = ".dockerignore"

    @classmethod
    def parse(cls, text: str, *, source: str = ".dockerignore") -> IgnoreRules:
        """Rules from the text of a .dockerignore file (``source`` names it in errors)."""
        return cls.from_patterns(read_ignore_lines(text), source=source)

    @classmethod
    def from_patterns(cls, patterns: Sequence[str], *, source: str = "--exclude") -> IgnoreRules:
        """Rules from already split patterns (COPY --exclude), cleaned like patternmatcher.New."""
        compiled = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = go_clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise ContextError(
                        f'{source}: illegal exclusion pattern: "!"',
                        hint="follow '!' with the path to re-include, e.g. '!keep.txt'",
                    )
                text = text[1:]
            compiled.append(_checked(text, exclusion, raw, source))
        return cls(patterns=tuple(compiled), source=source)

    def matches(self, rel_path: str) -> bool:
        """True if the context-relative path is excluded (itself or through a parent dir)."""
        path = go_clean(rel_path.lstrip("/") or ".")
        if path == "." or not self.patterns:
            return False
        candidates = _self_and_parents(path)
        matched = False
        for pattern in self.patterns:
            # an inclusion cannot change an excluded path, nor an exception an included one
            if pattern.exclusion != matched:
                continue
            if any(pattern.match(c) for c in candidates):
                matched = not pattern.exclusion
        return matched

    def may_include_below(self, rel_dir: str) -> bool:
        """Whether an exception (``!``) could re-include something below an excluded dir.

        False lets a walker skip the directory. Mirrors fsutil: when any exception has
        wildcards we cannot tell, so the answer is True.
        """
        exceptions = [p for p in self.patterns if p.exclusion]
        if not exceptions:
            return False
        if any(_PATTERN_CHARS & set(p.without_trailing_glob()) for p in exceptions):
            return True
        dir_slash = go_clean(rel_dir.lstrip("/") or ".") + "/"
        return any((p.without_trailing_glob() + "/").startswith(dir_slash) for p in exceptions)


def _checked(text: str, exclusion: bool, raw: str, source: str) -> Pattern:
    try:
        go_match(text, ".")  # patternmatcher.New validates with filepath.Match too
        return compile_pattern(text, exclusion)
    except BadPattern as exc:
        raise ContextError(
            f"{source}: invalid pattern {raw.strip()!r}: syntax error in pattern ({exc})",
            hint="patterns use Go filepath.Match syntax: '*', '?', '[a-z]', '**', '\\' escapes",
        ) from exc


def _self_and_parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]
