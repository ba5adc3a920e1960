"""Tests of dockerfile/expand.py: which fields Docker expands, and how errors point at lines."""

from __future__ import annotations

import pytest

from layerbuild.dockerfile.expand import expand, expand_heredoc
from layerbuild.dockerfile.instructions import (
    Add,
    Arg,
    Copy,
    Env,
    Expose,
    From,
    Heredoc,
    Instruction,
    Label,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from layerbuild.dockerfile.parser import Dockerfile, parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.errors import DockerfileError

ENV = {
    "A": "aa",
    "SP": "x y",
    "STAGE": "builder",
    "U": "1000",
    "G": "100",
    "MODE": "0755",
    "EXT": "log",
    "SUM": "sha256:" + "0" * 64,
    "PORTS": "80 81/udp",
    "SIG": "TERM",
    "PLAT": "linux/arm64",
    "BASE": "alpine",
}


def _parse(body: str, *, header: str = "") -> Dockerfile:
    text = header + "FROM scratch\n" + body
    return parse_dockerfile(DockerfileSource("Dockerfile.test", text))


def _one(line: str) -> Instruction:
    return _parse(line + "\n").stages[0].instructions[0]


def test_from_expands_image_platform_and_name() -> None:
    df = parse_dockerfile(DockerfileSource("D", "FROM --platform=$PLAT ${BASE}:3.$A AS b\n"))
    got = expand(df.stages[0].from_, ENV)
    assert isinstance(got, From)
    assert (got.image, got.platform, got.stage_name) == ("alpine:3.aa", "linux/arm64", "b")


def test_copy_expands_words_and_flags() -> None:
    instr = _one(
        'COPY --from=$STAGE --chown=$U:$G --chmod=$MODE --exclude=*.$EXT "$SP" b$A /dst/$A/'
    )
    got = expand(instr, ENV)
    assert isinstance(got, Copy)
    assert got.sources == ("x y", "baa")
    assert got.dest == "/dst/aa/"
    assert (got.from_stage, got.chown, got.chmod) == ("builder", "1000:100", "0755")
    assert got.excludes == ("*.log",)


def test_copy_leaves_heredoc_sources_and_bodies() -> None:
    instr = _one("COPY <<EOF $A/\nvalue $A\nEOF")
    assert isinstance(instr, Copy)
    got = expand(instr, {**ENV, "EOF": "not-this"})
    assert isinstance(got, Copy)
    assert got.sources == ("<<EOF",)
    assert got.dest == "aa/"
    assert got.heredocs == instr.heredocs  # the body is expanded by expand_heredoc, later


def test_add_expands_checksum_and_url() -> None:
    got = expand(_one("ADD --checksum=$SUM https://example.com/$A.tgz /opt/"), ENV)
    assert isinstance(got, Add)
    assert got.sources == ("https://example.com/aa.tgz",)
    assert got.checksum == ENV["SUM"]


def test_env_values_see_the_environment_before_the_instruction() -> None:
    got = expand(_one('ENV A="new $A" B=$A C=${NONE:-d}'), ENV)
    assert isinstance(got, Env)
    assert got.pairs == (("A", "new aa"), ("B", "aa"), ("C", "d"))


def test_env_legacy_form_removes_quotes() -> None:
    got = expand(_one('ENV LEGACY some "quoted" $A'), ENV)
    assert isinstance(got, Env)
    assert got.pairs == (("LEGACY", "some quoted aa"),)


def test_label_expands_keys_and_values() -> None:
    got = expand(_one('LABEL "org.$A.v"="$SP" plain=\'$A\''), ENV)
    assert isinstance(got, Label)
    assert got.pairs == (("org.aa.v", "x y"), ("plain", "$A"))


def test_expose_splits_expanded_ports() -> None:
    got = expand(_one("EXPOSE $PORTS 443/tcp"), ENV)
    assert isinstance(got, Expose)
    assert got.ports == ("80", "81/udp", "443/tcp")


def test_single_value_instructions() -> None:
    workdir = expand(_one("WORKDIR /w/${A}"), ENV)
    assert isinstance(workdir, Workdir) and workdir.path == "/w/aa"
    assert workdir.original == "WORKDIR /w/${A}"  # the text as written is kept for messages
    user = expand(_one("USER $U:$G"), ENV)
    assert isinstance(user, User) and user.user == "1000:100"
    sig = expand(_one("STOPSIGNAL SIG$SIG"), ENV)
    assert isinstance(sig, StopSignal) and sig.signal == "SIGTERM"
    vol = expand(_one('VOLUME ["/data/$A", "/logs"]'), ENV)
    assert isinstance(vol, Volume) and vol.paths == ("/data/aa", "/logs")


def test_arg_names_and_defaults() -> None:
    got = expand(_one("ARG X=$A Y Z=${NONE:-z}"), ENV)
    assert isinstance(got, Arg)
    assert got.pairs == (("X", "aa"), ("Y", None), ("Z", "z"))


@pytest.mark.parametrize(
    "line",
    [
        "RUN echo $A",
        'RUN ["echo", "$A"]',
        "CMD echo $A",
        "ENTRYPOINT exec $A",
        'SHELL ["/bin/$A", "-c"]',
        "HEALTHCHECK CMD test $A",
        "ONBUILD RUN echo $A",
        "MAINTAINER $A",
    ],
)
def test_not_expanded(line: str) -> None:
    instr = _one(line)
    assert expand(instr, ENV) is instr


def test_error_carries_file_line_and_hint() -> None:
    df = _parse("RUN true\nWORKDIR /app/${APP:?set APP}\n")
    instr = df.stages[0].instructions[1]
    with pytest.raises(DockerfileError) as info:
        expand(instr, ENV, source=df.source)
    err = info.value
    assert (err.file, err.line) == ("Dockerfile.test", 3)
    assert err.source_line == "WORKDIR /app/${APP:?set APP}"
    assert "WORKDIR" in err.message and "APP: set APP" in err.message
    assert err.hint is not None and "APP" in err.hint


def test_error_without_source_quotes_the_instruction() -> None:
    instr = _one("COPY ${A a/ b/")
    with pytest.raises(DockerfileError) as info:
        expand(instr, ENV)
    assert info.value.line == 2
    assert info.value.source_line == "COPY ${A a/ b/"


def test_escape_directive_changes_the_escape_character() -> None:
    df = _parse("WORKDIR C:\\dir\\`$A\n", header="# escape=`\n")
    assert df.escape == "`"
    got = expand(df.stages[0].instructions[0], ENV, escape=df.escape)
    assert isinstance(got, Workdir) and got.path == "C:\\dir\\$A"


def test_heredoc_body_expansion_keeps_quotes() -> None:
    doc = Heredoc("EOF", "say \"$A\" '$A' \\$A ${NONE:-d}\n", expand=True, chomp=False)
    assert expand_heredoc(doc, ENV) == "say \"aa\" 'aa' $A d\n"


def test_quoted_heredoc_body_is_verbatim() -> None:
    doc = Heredoc("EOF", "say $A \\$A\n", expand=False, chomp=False)
    assert expand_heredoc(doc, ENV) == "say $A \\$A\n"


def test_heredoc_from_a_parsed_dockerfile() -> None:
    instr = _one('COPY <<EOF <<"RAW" /dst/\nA=$A\nEOF\nA=$A\nRAW')
    assert isinstance(instr, Copy)
    bodies = [expand_heredoc(doc, ENV) for doc in instr.heredocs]
    assert bodies == ["A=aa\n", "A=$A\n"]


@pytest.mark.parametrize("form", ["${A:#a}", "${A:##a}", "${A:%a}", "${A:%%a}", "${NOPE:#a}"])
def test_colon_prefix_and_suffix_removal_is_an_error_naming_file_and_line(form: str) -> None:
    """BuildKit's lexer (shell/lex.go processDollar) fails `${v:#w}`, `${v:##w}`, `${v:%w}` and
    `${v:%%w}` with "unsupported modifier (:#) in substitution" (or (:%)), whether or not v is
    set; the build stops there. Before, layerbuild applied them as the colon-less forms."""
    df = _parse(f"RUN true\nENV X={form}\n")
    with pytest.raises(DockerfileError) as info:
        expand(df.stages[0].instructions[1], ENV, source=df.source)
    err = info.value
    assert (err.file, err.line) == ("Dockerfile.test", 3)
    assert "unsupported modifier (:" in err.message
    assert err.hint is not None and "without the colon" in err.hint


def test_bad_modifier_in_a_copy_heredoc_body_fails_at_expansion() -> None:
    """BuildKit expands a COPY heredoc body when it dispatches the instruction (ExpandRaw), so
    `${A:%x}` in the body fails the build there, with the instruction's location; a quoted name
    keeps the body verbatim and nothing fails."""
    df = _parse("RUN true\nCOPY <<EOF /x\nv=${A:%x}\nEOF\nCOPY <<'EOF' /y\nv=${A:%x}\nEOF\n")
    with pytest.raises(DockerfileError) as info:
        expand(df.stages[0].instructions[1], ENV, source=df.source)
    assert (info.value.file, info.value.line) == ("Dockerfile.test", 3)
    assert "<<EOF" in info.value.message and "unsupported modifier (:%)" in info.value.message
    verbatim = expand(df.stages[0].instructions[2], ENV, source=df.source)
    assert isinstance(verbatim, Copy) and verbatim.heredocs[0].content == "v=${A:%x}\n"
