"""The `${name<op>word}` modifiers of BuildKit's shell lexer: defaults, alternatives, required
values, and prefix/suffix trimming and replacement with `*`/`?` patterns.

Apart from shell.py because these are value transforms on an already scanned name and word;
shell.py owns the scanning (quotes, escapes, word splitting). A problem here is raised as
SyntaxProblem, which shell.py turns into a ShellExpansionError naming the whole word.
"""

from __future__ import annotations

import re


class SyntaxProblem(Exception):
    """Raised inside the lexer; turned into ShellExpansionError with the whole word."""

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(reason)
        self.hint = hint


def apply_modifier(name: str, value: str | None, op: str, colon: bool, word: str) -> str:
    """The `${name<op>word}` forms; `colon` makes an empty value count as unset."""
    absent = value is None or (colon and value == "")
    if op == "-":
        return word if absent else (value or "")
    if op == "+":
        return "" if absent else word
    if op == "?":
        hint = f"give {name} a value (--build-arg {name}=..., ARG or ENV)"
        if value is None:
            raise SyntaxProblem(f"{name}: {word or 'is not allowed to be unset'}", hint)
        if colon and value == "":
            raise SyntaxProblem(f"{name}: {word or 'is not allowed to be empty'}", hint)
        return value
    greedy = word.startswith(op)
    pattern = word[1:] if greedy else word
    if op == "#":
        return _trim_prefix(pattern, value or "", greedy)
    # shortest/longest *suffix*: reverse both so that a leftmost match finds it
    reversed_value = (value or "")[::-1]
    return _trim_prefix(_reverse_pattern(pattern), reversed_value, greedy)[::-1]


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = pattern_regex(pattern, greedy=greedy, anchored=True).match(value)
    return value[match.end() :] if match else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern but keep each `\\x` escape pair in order (`a\\*c` -> `c\\*a`)."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i : i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell pattern with only `*` and `?` wildcards (no [...]) as a regular expression."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(star)
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            nxt = pattern[i] if i < len(pattern) else ""
            if nxt in ("}", "/"):
                continue  # only there to keep ${...} from ending; not part of the pattern
            if nxt not in ("*", "?", "\\"):
                raise SyntaxProblem(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{nxt}'"
                )
            out.append(re.escape(nxt))
            i += 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)
