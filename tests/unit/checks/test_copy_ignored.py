"""CopyIgnoredFile with the cases of BuildKit's testCopyIgnoredFiles and
testCopyIgnoredFileContextRoot: Dockerfile + .dockerignore -> warnings."""

from __future__ import annotations

import pytest

from layerbuild.checks.run import run_checks
from layerbuild.context.ignore import IgnoreRules
from layerbuild.dockerfile.parser import parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource

COPY_ADD = "\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n"
BOTH = [
    (3, 'Attempting to Copy file "Dockerfile" that is excluded by .dockerignore'),
    (4, 'Attempting to Add file "Dockerfile" that is excluded by .dockerignore'),
]

CASES: list[tuple[str, str, str, list[tuple[int, str]]]] = [
    ("copy-and-add", COPY_ADD, "\nDockerfile\n", BOTH),
    ("skipped", "# check=skip=CopyIgnoredFile" + COPY_ADD, "\nDockerfile\n", []),
    ("from-stage", "\nFROM scratch AS base\nCOPY Dockerfile /foobar\nADD Dockerfile /windy\n"
     "FROM base\nCOPY --from=base /foobar /Dockerfile\n", "\nfoobar\n", []),
    ("exception", "\nFROM scratch\nCOPY ./Dockerfile .\n", "\n**\n!Dockerfile\n", []),
    ("exception-root", "\nFROM scratch\nCOPY . .\n", "\n**\n!Dockerfile\n", []),
    ("root-dotfiles", "\nFROM scratch\nCOPY . .\n", "\n.*\n", []),
    ("root-wildcard", "\nFROM scratch\nCOPY . .\n", "\n*\n",
     [(3, 'Attempting to Copy file "." that is excluded by .dockerignore')]),
    # ours: after expansion, through a parent directory; heredocs and URLs are not context files
    ("expanded-parent", "FROM scratch\nARG DIR=docs\nCOPY ${DIR}/a.md /\n", "docs\n",
     [(3, 'Attempting to Copy file "docs/a.md" that is excluded by .dockerignore')]),
    ("heredoc-and-url", "FROM scratch\nCOPY <<EOF /x\nhi\nEOF\nADD https://example.com/x /\n",
     "*\n", []),
]


@pytest.mark.parametrize(("text", "ignore", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_copy_ignored_file(text: str, ignore: str, expected: list[tuple[int, str]]) -> None:
    dockerfile = parse_dockerfile(DockerfileSource("Dockerfile", text))
    warnings = run_checks(dockerfile, {}, ignore=IgnoreRules.parse(ignore))
    assert [(w.line, w.message) for w in warnings if w.rule == "CopyIgnoredFile"] == expected


def test_no_dockerignore_no_check() -> None:
    dockerfile = parse_dockerfile(DockerfileSource("Dockerfile", COPY_ADD))
    assert [w for w in run_checks(dockerfile, {}) if w.rule == "CopyIgnoredFile"] == []
