"""Variable expansion in Dockerfile words, with the semantics of BuildKit's shell lexer.

BuildKit (`frontend/dockerfile/shell/lex.go`) does not run a shell for ENV, COPY, WORKDIR, ...: it
has its own small lexer, and the results people rely on follow from its details, so this module
follows them closely rather than POSIX sh:

- `$name`, `${name}`; unset variables expand to "" (`$1`, `$@`, `$$` are names too: usually unset);
- `${v:-w}` `${v-w}` `${v:+w}` `${v+w}` `${v:?msg}` `${v?msg}` (the colon forms treat "" as unset);
- `${v#p}` `${v##p}` `${v%p}` `${v%%p}` `${v/p/r}` `${v//p/r}` with `*` and `?` wildcards only;
  with a colon (`${v:#p}`, `${v:%%p}`) they are errors, as in BuildKit;
- `<<` swallows the blanks after it into the same word (`<<  EOF` is one word), which is how
  BuildKit finds heredoc markers with blanks;
- single quotes take everything literally; in double quotes the escape character only escapes
  `"`, `$` and itself; outside quotes it escapes any character (a trailing one is dropped);
- the word inside `${v:-...}` is itself a word: quotes, escapes and nested `${...}` work there;
- word splitting (`expand_words`) happens after expansion, on unquoted blanks, including blanks
  that came out of an unquoted variable; an empty quoted string makes no word.

Two flavours are exported: `expand_word` (BuildKit's ProcessWord: ENV, LABEL, COPY, WORKDIR...)
and `expand_words` (ProcessWords: EXPOSE). `ShellLexer` exposes every option (RawQuotes and
RawEscapes too: variables replaced, quotes and escape characters kept as written) plus the names
that matched or did not, for callers that want to warn about undefined variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from layerbuild.dockerfile.shellmodifiers import SyntaxProblem, apply_modifier, pattern_regex
from layerbuild.errors import ShellExpansionError

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


@dataclass(frozen=True)
class Expansion:
    """What a word expanded to, and which variable names it referred to."""

    result: str  # the whole word (ProcessWord)
    words: tuple[str, ...]  # split on unquoted blanks (ProcessWords)
    matched: frozenset[str]  # names that were set in the environment
    unmatched: frozenset[str]  # names that were not


class _Words:
    """Word splitting as the characters stream out of the lexer (BuildKit's wordsStruct)."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def finish(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


@dataclass(frozen=True)
class ShellLexer:
    """BuildKit's `shell.Lex` with its options; `process` is re-entrant (state lives per call).

    raw_quotes: keep quote characters in the result; raw_escapes: keep escape characters;
    skip_process_quotes: quotes are ordinary characters (variables inside '...' expand);
    skip_unset: leave references to unset variables as written instead of expanding to "".
    """

    escape: str = "\\"
    raw_quotes: bool = False
    raw_escapes: bool = False
    skip_process_quotes: bool = False
    skip_unset: bool = False

    def process(self, word: str, env: Mapping[str, str]) -> Expansion:
        """Expand `word` with `env`; ShellExpansionError names the word and the problem."""
        scan = _Scanner(self, word, env)
        try:
            result, words = scan.until(None, self.raw_escapes)
        except SyntaxProblem as exc:
            raise ShellExpansionError(word, str(exc), hint=exc.hint) from None
        return Expansion(
            result=result,
            words=tuple(words),
            matched=frozenset(scan.matched),
            unmatched=frozenset(scan.unmatched),
        )


class _Scanner:
    """One pass over one word; mirrors lex.go's shellWord method by method."""

    def __init__(self, lexer: ShellLexer, text: str, env: Mapping[str, str]) -> None:
        self.lx = lexer
        self.text = text
        self.pos = 0
        self.env = env
        self.raw_escapes = lexer.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def next(self) -> str | None:
        ch = self.peek()
        if ch is not None:
            self.pos += 1
        return ch

    def lookup(self, name: str) -> str | None:
        value = self.env.get(name)
        (self.matched if value is not None else self.unmatched).add(name)
        return value

    def until(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        """Process up to `stop` (consumed) or the end; returns the text and its split words."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._until(stop)
        finally:
            self.raw_escapes = saved

    def _until(self, stop: str | None) -> tuple[str, list[str]]:
        out: list[str] = []
        words = _Words()
        quotes = not self.lx.skip_process_quotes
        while (ch := self.peek()) is not None:
            if ch == stop:
                self.next()
                return "".join(out), words.finish()
            if ch == "$":
                text = self.dollar()
                out.append(text)
                words.add_string(text)  # an unquoted expansion is subject to splitting
            elif ch == "<":
                text = self.possible_heredoc()
                out.append(text)
                words.add_raw(text)
            elif quotes and ch in "'\"":
                text = self.single_quoted() if ch == "'" else self.double_quoted()
                out.append(text)
                words.add_raw(text)
            else:
                self._plain(out, words)
        if stop is not None:
            raise SyntaxProblem(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.finish()

    def _plain(self, out: list[str], words: _Words) -> None:
        ch = self.next()
        assert ch is not None
        if ch != self.lx.escape:
            out.append(ch)
            words.add_char(ch)
            return
        if self.raw_escapes:
            out.append(ch)
            words.add_raw(ch)
        escaped = self.next()
        if escaped is None:  # a trailing escape character escapes nothing and is dropped
            return
        out.append(escaped)
        words.add_raw(escaped)  # an escaped blank does not split

    def possible_heredoc(self) -> str:
        """`<`, or `<<` with the blanks after it: they stay in the word, so that `<<  EOF` is
        one word, the heredoc EOF (lex.go processPossibleHeredoc)."""
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        start = self.pos
        while self.peek() in ("\t", "\r", " "):
            self.pos += 1
        return "<<" + self.text[start : self.pos]

    def single_quoted(self) -> str:
        self.next()
        out = ["'"] if self.lx.raw_quotes else []
        while True:
            ch = self.next()
            if ch is None:
                raise SyntaxProblem(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                if self.lx.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quoted(self) -> str:
        self.next()
        out = ['"'] if self.lx.raw_quotes else []
        while True:
            ch = self.peek()
            if ch is None:
                raise SyntaxProblem(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                if self.lx.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == self.lx.escape:
                follower = self.peek()
                if follower is None:
                    continue  # reported as the missing closing quote on the next turn
                if follower in ('"', "$", self.lx.escape):
                    if self.raw_escapes:
                        out.append(ch)
                    ch = self.next() or ""
            out.append(ch)

    def name(self) -> str:
        """A variable name: letters, digits, _; or all digits; or one special parameter."""
        first = self.peek()
        if first is None:
            return ""
        if first.isdigit():
            start = self.pos
            while (ch := self.peek()) is not None and ch.isdigit():
                self.pos += 1
            return self.text[start : self.pos]
        if first in _SPECIAL_PARAMS:
            self.pos += 1
            return first
        start = self.pos
        while (ch := self.peek()) is not None and (ch.isalnum() or ch == "_"):
            self.pos += 1
        return self.text[start : self.pos]

    def dollar(self) -> str:
        self.next()  # the $
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"  # a lone $ (before a blank, a quote, the end) is literal
            value = self.lookup(name)
            if value is None:
                return f"${name}" if self.lx.skip_unset else ""
            return value
        self.next()  # the {
        ch = self.peek()
        if ch is None:
            raise SyntaxProblem("syntax error: missing '}'")
        if ch in "{}:":
            raise SyntaxProblem("syntax error: bad substitution")
        return self.braced(self.name())

    def braced(self, name: str) -> str:
        op = self.next()
        if op is None:
            raise SyntaxProblem("syntax error: missing '}'")
        if op == "}":
            value = self.lookup(name)
            if value is None:
                return f"${{{name}}}" if self.lx.skip_unset else ""
            return value
        if op == "/":
            return self.replace(name)
        colon = op == ":"
        if colon:
            op = self.next()
            if op is None:
                raise SyntaxProblem("syntax error: missing '}'")
        # `${v:#p}` and `${v:%p}` look like sh but are not: BuildKit refuses them, as here
        if op not in "+-?#%" or (colon and op in "#%"):
            raise SyntaxProblem(
                f"unsupported modifier ({':' if colon else ''}{op}) in substitution",
                f"write it without the colon: ${{{name}{op}pattern}} removes the shortest "
                f"matching {'prefix' if op == '#' else 'suffix'}, ${{{name}{op}{op}pattern}} "
                "the longest"
                if colon and op in "#%"
                else None,
            )
        word = self._modifier_word(op in "#%")
        value = self.lookup(name)
        if value is None and self.lx.skip_unset:
            return f"${{{name}{':' if colon else ''}{op}{word}}}"
        return apply_modifier(name, value, op, colon, word)

    def _modifier_word(self, raw_escapes: bool) -> str:
        try:
            word, _ = self.until("}", raw_escapes)
        except SyntaxProblem:
            if self.peek() is None:
                raise SyntaxProblem("syntax error: missing '}'") from None
            raise
        return word

    def replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        try:
            pattern, _ = self.until("/", True)
        except SyntaxProblem:
            raise SyntaxProblem("syntax error: missing '/' in ${}") from None
        replacement = self._modifier_word(True)
        value = self.lookup(name)
        if value is None and self.lx.skip_unset:
            return f"${{{name}/{pattern}/{replacement}}}"
        regex = pattern_regex(pattern, greedy=True, anchored=False)
        count = 0 if replace_all else 1
        # a function, so that backslashes in the replacement are not group references
        return regex.sub(lambda _m: replacement, value or "", count=count)


def _lexer(escape: str) -> ShellLexer:
    return ShellLexer(escape=escape)


def expand_word(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """Expand variables and remove quotes and escapes, as BuildKit's ProcessWord does."""
    return _lexer(escape).process(word, env).result


def expand_words(word: str, env: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    """Like expand_word, then split on unquoted blanks (BuildKit's ProcessWords)."""
    return list(_lexer(escape).process(word, env).words)
