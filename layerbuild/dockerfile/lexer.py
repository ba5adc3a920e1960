"""Dockerfile text -> raw instructions (keyword, flags, argument text, heredocs, line span).

Written by hand rather than on top of dockerfile-parse: that library has no notion of heredocs
(their bodies come back as instructions), rewrites `${A:-def}` and cannot report where an
instruction's lines end once bodies are involved. The rules below follow BuildKit's
`frontend/dockerfile/parser` (parser.go, split_command.go, line_parsers.go) line by line, which is
about as much code as adapting the library's output would have been, and has no quirks to undo.

Rules implemented, in BuildKit's order:
- parser directives (`# syntax=`, `# escape=`, `# check=`) only until the first line that is not
  one (an instruction, another comment, or an empty line); each at most once;
- the first line of an instruction is left-trimmed and a whole-line comment is dropped; `#` in the
  middle of a line is ordinary text;
- a trailing escape character (`\\` or the `escape=` one) continues the instruction; comment lines
  and empty lines inside a continuation are skipped;
- for RUN, COPY and ADD in shell form, every word `[n]<<[-]NAME` opens a heredoc whose body is the
  following lines up to a line equal to NAME (tab-indented allowed for `<<-`). Body lines are never
  instructions, comments or continuations.

Heredoc markers are found as BuildKit finds them (parser.go heredocsFromLine, heredocFromMatch):
the whole line is split into words by the shell lexer with quotes and escapes kept, where `<<`
keeps the blanks after it (`<<  EOF` is one word); a line the lexer cannot read (an unbalanced
quote, a bad `${...}`) has no heredocs at all. A word is a marker when it is `[n]<<[-]` then blanks
then NAME; NAME is read again by the lexer and must be one word: quotes and escapes are removed
(`<<eo\\'f` names `eo'f`, `<<'one two'` names `one two`), and the body is expanded unless a quote
was removed. The `-` must touch the `<<`: `<< -EOF` names `-EOF`.

JSON form is an argument that is, as a whole, one JSON array (Go's json.Unmarshal): `CMD ["a"] b`
is shell form.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace

from layerbuild.dockerfile.instructions import Heredoc
from layerbuild.dockerfile.shell import ShellLexer
from layerbuild.dockerfile.source import DockerfileSource, Span
from layerbuild.errors import NotStringArray, ShellExpansionError

KNOWN_DIRECTIVES = ("syntax", "escape", "check")
HEREDOC_KEYWORDS = frozenset({"run", "copy", "add"})

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KEYWORD_SPLIT = re.compile(r"[\t\v\f\r ]+")
# BuildKit's reHeredoc; Go's \d and \s are ASCII-only, and fullmatch stands for its ^...$
_HEREDOC_WORD = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)")
# what lex.go sees in a line: quotes and escapes kept, unset variables kept as written
_LINE_LEXER = ShellLexer(raw_quotes=True, raw_escapes=True, skip_unset=True)
_NAME_LEXER = ShellLexer(skip_unset=True)
_RAW_NAME_LEXER = ShellLexer(raw_quotes=True, skip_unset=True)
# Go's unicode.IsSpace, which BuildKit trims before looking for "["; str.isspace also has \x1c-\x1f
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + (
    "\u2028\u2029\u202f\u205f\u3000")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)


@dataclass(frozen=True)
class RawInstruction:
    """One logical instruction, before it is typed."""

    keyword: str  # as written (e.g. "run"); compare case-insensitively
    flags: tuple[str, ...]  # leading "--name[=value]" words, quotes removed
    args: str  # text after the keyword and flags, stripped
    original: str  # the logical line: continuations joined, comment lines dropped
    span: Span  # first line .. last line (heredoc terminators included)
    heredocs: tuple[Heredoc, ...] = ()
    # the last line of the instruction when an empty line sat inside its continuation (BuildKit
    # reports it there); None otherwise. Kept for the NoEmptyContinuation check only.
    empty_continuation: int | None = None


@dataclass(frozen=True)
class LexedDockerfile:
    """A Dockerfile split into instructions, continuation lines joined, with its directives."""

    directives: dict[str, str] = field(hash=False)
    escape: str
    instructions: tuple[RawInstruction, ...]


class _Directives:
    """BuildKit's directive parser state: active until the first non-directive line."""

    def __init__(self, source: DockerfileSource) -> None:
        self.source = source
        self.done = False
        self.values: dict[str, str] = {}
        self.escape = "\\"

    def observe(self, line: str, lineno: int) -> None:
        if self.done:
            return
        match = _DIRECTIVE.match(line)
        name = match.group(1).lower() if match else ""
        if match is None or name not in KNOWN_DIRECTIVES:
            self.done = True
            return
        span = Span(lineno, lineno)
        if name in self.values:
            raise self.source.error(
                f"only one {name} parser directive can be used", span,
                hint="remove the repeated directive line")
        value = match.group(2)
        if name == "escape" and value not in ("\\", "`"):
            raise self.source.error(
                f"invalid escape token {value!r}: it must be \\ or `", span,
                hint="use '# escape=\\' (the default) or '# escape=`'")
        self.values[name] = value
        if name == "escape":
            self.escape = value


def _continuation(escape: str) -> re.Pattern[str]:
    e = re.escape(escape)
    # same pattern as BuildKit: an escape char that is itself escaped does not count
    return re.compile(rf"([^{e}]){e}[ \t]*$|^{e}[ \t]*$")


def _trim_continuation(line: str, pattern: re.Pattern[str]) -> tuple[str, bool]:
    """(line without its continuation marker, whether the instruction ends here)."""
    match = pattern.search(line)
    if match is None:
        return line, True
    return line[: match.start()] + (match.group(1) or ""), False


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def lex(source: DockerfileSource) -> LexedDockerfile:
    """Split `source` into raw instructions; DockerfileError on malformed structure."""
    directives = _Directives(source)
    lines = source.lines
    out: list[RawInstruction] = []
    i = 0
    while i < len(lines):
        first = lines[i].lstrip()
        i += 1
        start = i
        directives.observe(first, i)
        pattern = _continuation(directives.escape)
        text, ended = _trim_continuation("" if _is_comment(first) else first, pattern)
        if ended and text == "":
            continue
        empty = False
        while not ended and i < len(lines):
            line = lines[i]
            i += 1
            if _is_comment(line):
                continue
            if line.strip() == "":
                empty = True
                continue
            part, ended = _trim_continuation(line, pattern)
            text += part
        raw = split_command(text, Span(start, i))
        if empty:
            raw = replace(raw, empty_continuation=i)
        if _may_hold_heredocs(raw, text):
            heredocs, i = _read_heredocs(source, text, start, i)
            if heredocs:
                raw = replace(raw, span=Span(start, i), heredocs=tuple(heredocs))
        out.append(raw)
    return LexedDockerfile(dict(directives.values), directives.escape, tuple(out))


def _may_hold_heredocs(raw: RawInstruction, text: str) -> bool:
    """RUN, COPY or ADD in shell form with a `<<` somewhere (BuildKit's canContainHeredoc)."""
    if raw.keyword.lower() not in HEREDOC_KEYWORDS or "<<" not in text:
        return False
    try:
        return parse_json_array(raw.args) is None
    except NotStringArray:
        return False  # JSON form; the parser reports the bad array


def split_command(line: str, span: Span) -> RawInstruction:
    """Keyword, flags and argument text of a logical line (BuildKit's splitCommand)."""
    parts = _KEYWORD_SPLIT.split(line.strip(), maxsplit=1)
    args, flags = "", list[str]()
    if len(parts) == 2:
        args, flags = extract_flags(parts[1])
    return RawInstruction(parts[0], tuple(flags), args.strip(), line.strip(), span)


def extract_flags(line: str) -> tuple[str, list[str]]:
    """Leading `--flag` words (quotes and backslashes processed) and the rest of the line."""
    words: list[str] = []
    pos = 0
    n = len(line)
    while True:
        while pos < n and line[pos].isspace():
            pos += 1
        if pos >= n:
            return "", words
        if not line.startswith("--", pos):
            return line[pos:], words
        word, quoted, pos = _flag_word(line, pos)
        if word == "--":
            return line[pos:].lstrip(), words  # an explicit end of flags, as in BuildKit
        if quoted or word:
            words.append(word)


def _flag_word(line: str, pos: int) -> tuple[str, bool, int]:
    word: list[str] = []
    quote = ""
    quoted = False
    while pos < len(line):
        ch = line[pos]
        if not quote and ch.isspace():
            break
        pos += 1
        if quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote, quoted = ch, True
        elif ch == "\\":
            if pos < len(line):
                word.append(line[pos])
                pos += 1
        else:
            word.append(ch)
    return "".join(word), quoted, pos


def parse_json_array(text: str) -> list[str] | None:
    """The exec-form array, or None when `text` is not a JSON array (shell form then applies).

    As BuildKit's parseJSON (json.Unmarshal): the whole text must be the one array, so
    `["a"] b` is shell form. Raises NotStringArray for an array with non-string items, which
    Docker reports rather than treating as shell form.
    """
    text = text.lstrip(_GO_SPACE)
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text, parse_constant=_not_json)
    except ValueError:
        return None
    if not all(isinstance(item, str) for item in value):
        raise NotStringArray("when using JSON array syntax, arrays must be of strings only")
    # Go decodes a lone surrogate escape ("\ud800") as U+FFFD; Python would keep it
    return [_LONE_SURROGATE.sub("\ufffd", item) for item in value]


def _not_json(constant: str) -> None:
    """Python's json takes NaN and Infinity; Go's, like the JSON standard, does not."""
    raise ValueError(f"{constant} is not JSON")


def split_whitespace(text: str) -> list[str]:
    """Words split on blanks, quotes not special (BuildKit's parseStringsWhitespaceDelimited)."""
    return [w for w in _KEYWORD_SPLIT.split(text.strip()) if w] if text.strip() else []


def split_words(text: str, escape: str) -> list[str]:
    """Words split on blanks outside quotes; quotes and escapes are KEPT (BuildKit parseWords).

    Quote removal belongs to variable expansion, which must still see which parts were quoted.
    """
    words: list[str] = []
    word: list[str] = []
    quote = ""
    keep_blank = False
    pos = 0
    while pos < len(text):
        ch = text[pos]
        pos += 1
        if not quote and ch.isspace():
            if word or keep_blank:
                words.append("".join(word))
            word, keep_blank = [], False
            continue
        if ch == escape and quote != "'":
            if pos == len(text):
                break  # an escape at the very end is dropped
            word.append(ch + text[pos])
            pos += 1
            continue
        if quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote, keep_blank = ch, True
        word.append(ch)
    if word or keep_blank:
        words.append("".join(word))
    return words


def heredoc_words(line: str) -> list[str]:
    """The words of `line` in which BuildKit looks for heredoc markers; [] when the shell lexer
    cannot read the line (BuildKit then finds no heredocs in it)."""
    try:
        return list(_LINE_LEXER.process(line, {}).words)
    except ShellExpansionError:
        return []


def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc opened by `word` (`<<EOF`, `<<-'EOF'`, `3<<X`, `<<  EOF`), content empty.

    ShellExpansionError when the name cannot be lexed although the line could (BuildKit's
    ParseHeredoc fails the parse then).
    """
    match = _HEREDOC_WORD.fullmatch(word)
    if match is None or not match.group(3):
        return None
    rest = match.group(3)
    names = _NAME_LEXER.process(rest, {}).words
    if len(names) != 1:
        return None
    raw = "".join(_RAW_NAME_LEXER.process(rest, {}).words)
    # quotes that the lexer removed mean some part of the name was quoted: body kept verbatim
    expand = _quotes(names[0]) == _quotes(raw)
    return Heredoc(name=names[0], content="", expand=expand, chomp=match.group(2) == "-")


def _quotes(text: str) -> int:
    return text.count("'") + text.count('"')


def heredoc_marker(word: str) -> Heredoc | None:
    """parse_heredoc, with None for a name that cannot be lexed (BuildKit's MustParseHeredoc)."""
    try:
        return parse_heredoc(word)
    except ShellExpansionError:
        return None


def _read_heredocs(
    source: DockerfileSource, text: str, start: int, i: int
) -> tuple[list[Heredoc], int]:
    """The heredocs opened in `text` (lines start..i-1), bodies read from line i on."""
    docs: list[Heredoc] = []
    for word in heredoc_words(text):
        try:
            doc = parse_heredoc(word)
        except ShellExpansionError as exc:
            raise source.error(f"heredoc {word}: {exc.reason}", Span(start, start),
                               hint=exc.hint) from None
        if doc is not None:
            doc, i = _read_body(source, doc, start, i)
            docs.append(doc)
    return docs, i


def _read_body(source: DockerfileSource, doc: Heredoc, start: int, i: int) -> tuple[Heredoc, int]:
    lines = source.lines
    body: list[str] = []
    opened_at = i
    while True:
        if i >= len(lines):
            raise source.error(
                f"unterminated heredoc <<{doc.name} (opened on line {start})",
                Span(start, start),
                hint=f"end the heredoc with a line containing only {doc.name} "
                f"(the body started on line {opened_at + 1})")
        line = lines[i]
        i += 1
        if (line.lstrip("\t") if doc.chomp else line) == doc.name:
            break
        body.append(line + "\n")
    content = "".join(body)
    if doc.chomp:
        content = _LEADING_TABS.sub("", content)
    return Heredoc(doc.name, content, doc.expand, doc.chomp), i
