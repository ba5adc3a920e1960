"""engine/dryrunhints: which context files a step names, and the hint's words."""

from __future__ import annotations

from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.parser import parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.engine import dryrunhints as hints


def _steps(text: str) -> list[ins.Instruction]:
    dockerfile = parse_dockerfile(DockerfileSource("Dockerfile", text))
    return [i for s in dockerfile.stages for i in s.instructions]


def test_readers_leave_whole_context_copies_and_other_stages_out() -> None:
    steps = _steps(
        "FROM busybox AS a\nCOPY . .\nCOPY ./src/ /src/\nCOPY --from=a /x /x\n"
        "ADD *.txt /t/\nRUN --mount=type=bind,source=conf,target=/c true\n"
        "RUN --mount=type=bind,from=a,source=other,target=/o true\n"
    )
    assert hints.context_readers(steps) == ["./src/", "*.txt", "conf"]


def test_a_file_is_read_when_a_reader_names_it_or_a_directory_above_it() -> None:
    readers = ["./src/", "*.txt", "conf"]
    assert hints.is_read("src/a/b.py", readers)
    assert hints.is_read("notes.txt", readers)
    assert hints.is_read("conf", readers)
    assert not hints.is_read("README.md", readers)
    assert not hints.is_read("docs/notes.md", readers)
    assert not hints.is_read("srcx/a", readers)


def test_whole_context_sources() -> None:
    assert hints.whole_context([".", "x"]) and hints.whole_context(["./"])
    assert not hints.whole_context(["src", "./a"])


def test_files_are_listed_up_to_the_limit_then_counted() -> None:
    changed = [f"/f{n} changed" for n in range(12)]
    assert hints.files_lines(changed) == changed[:10] + ["and 2 more"]
    assert hints.files_lines(changed[:3]) == changed[:3]


def test_the_hint_names_the_copy_its_line_and_the_steps_it_keeps() -> None:
    copy = _steps("FROM busybox\nENV A=1\nCOPY  .  /app/\nRUN true\n")[1]
    hint = hints.ignore_hint("README.md", copy, 3, 4)
    assert hint == (
        "README.md changed; no step reads it except `COPY . /app/` at line 3; add it to "
        ".dockerignore to keep steps 3\u20134 cached"
    )
    assert hints.ignore_hint("a", copy, 4, 4).endswith("keep step 4 cached")
