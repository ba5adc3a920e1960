from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.select import SourceFile, load_ignore, select, split_wildcards
from layerbuild.errors import ContextError


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _rels(found: list[SourceFile]) -> list[tuple[str, str]]:
    return [(f.source, f.rel) for f in found]


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    root.mkdir()
    return _tree(
        root,
        {
            "a.txt": "a",
            "b.txt": "b",
            "c.md": "c",
            "src/main.py": "m",
            "src/pkg/util.py": "u",
            "src/pkg/data.json": "{}",
            "src/x/keep": "k",
            "src/y/keep": "k",
            "docs/readme.md": "r",
            "ünïcode/名前.txt": "n",
        },
    )


def test_plain_file(ctx: Path) -> None:
    found = select(ctx, "a.txt", ignore=None, excludes=())
    assert _rels(found) == [("a.txt", "")]
    assert found[0].path == ctx / "a.txt"
    assert stat.S_ISREG(found[0].st.st_mode)


def test_leading_slash_and_dotdot_stay_in_root(ctx: Path) -> None:
    assert _rels(select(ctx, "/a.txt", ignore=None, excludes=())) == [("a.txt", "")]
    assert _rels(select(ctx, "../../a.txt", ignore=None, excludes=())) == [("a.txt", "")]
    assert _rels(select(ctx, "src/../../b.txt", ignore=None, excludes=())) == [("b.txt", "")]


def test_directory_walked_sorted(ctx: Path) -> None:
    found = select(ctx, "src", ignore=None, excludes=())
    assert [f.rel for f in found] == [
        "",
        "main.py",
        "pkg",
        "pkg/data.json",
        "pkg/util.py",
        "x",
        "x/keep",
        "y",
        "y/keep",
    ]
    assert all(f.source == "src" for f in found)


def test_dot_is_the_whole_context(ctx: Path) -> None:
    rels = [f.rel for f in select(ctx, ".", ignore=None, excludes=())]
    assert rels[0] == ""
    assert "ünïcode/名前.txt" in rels
    assert "src/pkg/util.py" in rels


def test_glob_top_level(ctx: Path) -> None:
    assert _rels(select(ctx, "*.txt", ignore=None, excludes=())) == [("a.txt", ""), ("b.txt", "")]


def test_glob_in_the_middle(ctx: Path) -> None:
    found = select(ctx, "src/*/keep", ignore=None, excludes=())
    assert _rels(found) == [("src/x/keep", ""), ("src/y/keep", "")]


def test_glob_matching_dir_is_walked_not_descended_for_matching(ctx: Path) -> None:
    found = select(ctx, "sr?", ignore=None, excludes=())
    assert found[0].source == "src" and found[0].rel == ""
    assert "pkg/util.py" in [f.rel for f in found]


def test_glob_character_class_and_unicode(ctx: Path) -> None:
    assert _rels(select(ctx, "[ab].txt", ignore=None, excludes=())) == [
        ("a.txt", ""),
        ("b.txt", ""),
    ]
    assert _rels(select(ctx, "ünïcode/*.txt", ignore=None, excludes=())) == [
        ("ünïcode/名前.txt", ""),
    ]


def test_escaped_wildcard_is_literal(tmp_path: Path) -> None:
    _tree(tmp_path, {"a*b": "1", "axb": "2"})
    assert split_wildcards("a\\*b") == ("a\\*b", "")
    assert _rels(select(tmp_path, "a[*]b", ignore=None, excludes=())) == [("a*b", "")]


def test_missing_file_message(ctx: Path) -> None:
    with pytest.raises(ContextError) as err:
        select(ctx, "nope.txt", ignore=None, excludes=())
    assert "file not found in build context or excluded by .dockerignore" in str(err.value)
    assert "stat nope.txt" in str(err.value)


def test_glob_without_match_is_an_error(ctx: Path) -> None:
    with pytest.raises(ContextError, match=r"\*\.nothing"):
        select(ctx, "*.nothing", ignore=None, excludes=())


def test_ignored_file_is_missing(ctx: Path) -> None:
    rules = IgnoreRules.parse("*.txt\n")
    with pytest.raises(ContextError, match="excluded by .dockerignore"):
        select(ctx, "a.txt", ignore=rules, excludes=())
    assert _rels(select(ctx, "*", ignore=rules, excludes=()))[:1] == [("c.md", "")]


def test_ignore_applies_inside_walk_and_is_anchored(ctx: Path) -> None:
    rules = IgnoreRules.parse("*.md\nsrc/pkg\n")
    rels = [f.rel for f in select(ctx, ".", ignore=rules, excludes=())]
    assert "c.md" not in rels
    assert "docs/readme.md" in rels  # '*.md' is anchored at the root
    assert "src/pkg" not in rels and "src/pkg/util.py" not in rels


def test_exception_reincludes_inside_excluded_dir(ctx: Path) -> None:
    rules = IgnoreRules.parse("src\n!src/pkg/util.py\n")
    rels = [f.rel for f in select(ctx, ".", ignore=rules, excludes=())]
    assert [r for r in rels if r.startswith("src")] == ["src", "src/pkg", "src/pkg/util.py"]
    # the excluded dir exists as a source because something inside it survives
    assert [f.rel for f in select(ctx, "src", ignore=rules, excludes=())] == [
        "",
        "pkg",
        "pkg/util.py",
    ]


def test_excluded_dockerfile_not_copied(ctx: Path) -> None:
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    rules = IgnoreRules.parse("Dockerfile\n.dockerignore\n")
    rels = [f.rel for f in select(ctx, ".", ignore=rules, excludes=())]
    assert "Dockerfile" not in rels


def test_copy_exclude_relative_to_source(ctx: Path) -> None:
    found = select(ctx, "src", ignore=None, excludes=["*.py", "pkg/*.json"])
    # anchored like .dockerignore: '*.py' drops main.py but not pkg/util.py
    assert [f.rel for f in found] == ["", "pkg", "pkg/util.py", "x", "x/keep", "y", "y/keep"]
    found = select(ctx, "src", ignore=None, excludes=["**/*.py"])
    assert "pkg/util.py" not in [f.rel for f in found]


def test_copy_exclude_with_exception(ctx: Path) -> None:
    found = select(ctx, "src", ignore=None, excludes=["pkg", "!pkg/util.py"])
    assert "pkg/util.py" in [f.rel for f in found]
    assert "pkg/data.json" not in [f.rel for f in found]


def test_copy_exclude_filters_glob_matches(ctx: Path) -> None:
    assert _rels(select(ctx, "*.txt", ignore=None, excludes=["b*"])) == [("a.txt", "")]


def test_symlinks_inside_are_returned_as_links(tmp_path: Path, ctx: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    os.symlink(outside, ctx / "src" / "abs-out")
    os.symlink("../../outside.txt", ctx / "src" / "rel-out")
    os.symlink("/etc/passwd", ctx / "src" / "etc-passwd")
    os.symlink("pkg", ctx / "src" / "pkg-link")
    found = {f.rel: f for f in select(ctx, "src", ignore=None, excludes=())}
    for name in ("abs-out", "rel-out", "etc-passwd", "pkg-link"):
        assert stat.S_ISLNK(found[name].st.st_mode), name
    assert "pkg-link/util.py" not in found  # a symlinked dir is not walked


def test_final_symlink_followed_within_root(tmp_path: Path, ctx: Path) -> None:
    os.symlink("src/main.py", ctx / "link")
    found = select(ctx, "link", ignore=None, excludes=())
    assert found[0].source == "link"
    assert found[0].path == ctx / "src" / "main.py"
    assert stat.S_ISREG(found[0].st.st_mode)
    kept = select(ctx, "link", ignore=None, excludes=(), follow_final_symlink=False)
    assert stat.S_ISLNK(kept[0].st.st_mode)


def test_symlinked_dir_in_source_path_followed(ctx: Path) -> None:
    os.symlink("src", ctx / "s")
    found = select(ctx, "s/pkg", ignore=None, excludes=())
    assert found[0].path == ctx / "src" / "pkg"
    assert [f.rel for f in found] == ["", "data.json", "util.py"]


def test_escaping_symlink_clamped_to_root(tmp_path: Path, ctx: Path) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    os.symlink("../outside.txt", ctx / "up")
    os.symlink(str(tmp_path / "outside.txt"), ctx / "abs")
    # '../outside.txt' from the root is '/outside.txt' inside the root: not there
    with pytest.raises(ContextError, match="stat up"):
        select(ctx, "up", ignore=None, excludes=())
    with pytest.raises(ContextError, match="stat abs"):
        select(ctx, "abs", ignore=None, excludes=())
    # an absolute link resolves against the root, like a chroot
    os.symlink("/a.txt", ctx / "abs-in")
    assert select(ctx, "abs-in", ignore=None, excludes=())[0].path == ctx / "a.txt"


def test_parent_link_out_of_the_root_is_resolved_inside(tmp_path: Path, ctx: Path) -> None:
    """`sub -> /<outside dir>`: sub/f.txt names <ctx>/<outside dir>/f.txt, never the host's."""
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "f.txt").write_text("host")
    os.symlink(outside, ctx / "sub")
    os.symlink("../../host", ctx / "src" / "up")
    for source in ("sub/f.txt", "src/up/f.txt", "sub/*.txt"):
        with pytest.raises(ContextError):
            select(ctx, source, ignore=None, excludes=())
    inside = ctx / str(outside).lstrip("/")
    inside.mkdir(parents=True)
    (inside / "f.txt").write_text("inside")
    (ctx / "host").mkdir()
    (ctx / "host" / "f.txt").write_text("inside too")
    assert select(ctx, "sub/f.txt", ignore=None, excludes=())[0].path == inside / "f.txt"
    assert select(ctx, "src/up/f.txt", ignore=None, excludes=())[0].path == ctx / "host/f.txt"


def test_link_target_is_cleaned_against_the_links_directory(ctx: Path) -> None:
    """As fs.RootPath: in `l -> pkg/../x/keep`, `..` undoes `pkg` itself, though pkg is a
    link (to pkg-real/deep): l names src/x/keep, not src/pkg-real/x/keep."""
    os.rename(ctx / "src" / "pkg", ctx / "src" / "deep")
    (ctx / "src" / "pkg-real").mkdir()
    os.rename(ctx / "src" / "deep", ctx / "src" / "pkg-real" / "deep")
    os.symlink("pkg-real/deep", ctx / "src" / "pkg")
    (ctx / "src" / "pkg-real" / "x").mkdir()
    (ctx / "src" / "pkg-real" / "x" / "keep").write_text("wrong")
    os.symlink("pkg/../x/keep", ctx / "src" / "l")
    assert select(ctx, "src/l", ignore=None, excludes=())[0].path == ctx / "src" / "x" / "keep"


def test_symlink_loop_reported(ctx: Path) -> None:
    os.symlink("loop2", ctx / "loop1")
    os.symlink("loop1", ctx / "loop2")
    with pytest.raises(ContextError, match="too many levels"):
        select(ctx, "loop1", ignore=None, excludes=())


def test_special_files_listed(ctx: Path) -> None:
    os.mkfifo(ctx / "src" / "pipe")
    found = {f.rel: f for f in select(ctx, "src", ignore=None, excludes=())}
    assert stat.S_ISFIFO(found["pipe"].st.st_mode)


def test_load_ignore_precedence(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / ".dockerignore").write_text("from-context\n")
    dockerfile = tmp_path / "build" / "app.Dockerfile"
    dockerfile.parent.mkdir()
    dockerfile.write_text("FROM scratch\n")
    assert load_ignore(ctx, dockerfile).matches("from-context")
    (tmp_path / "build" / "app.Dockerfile.dockerignore").write_text("from-dockerfile\n")
    rules = load_ignore(ctx, dockerfile)
    assert rules.matches("from-dockerfile")
    assert not rules.matches("from-context")
    assert rules.source.endswith("app.Dockerfile.dockerignore")


def test_load_ignore_absent(tmp_path: Path) -> None:
    assert load_ignore(tmp_path, None).patterns == ()


def test_load_ignore_link_out_of_the_context_is_no_file(tmp_path: Path) -> None:
    """.dockerignore -> a host file: BuildKit resolves the link inside the context (where
    nothing is), so no rules apply and the host file is never read."""
    (tmp_path / "elsewhere").write_text("a.txt\n")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    os.symlink(tmp_path / "elsewhere", ctx / ".dockerignore")
    assert load_ignore(ctx, None).patterns == ()
    os.unlink(ctx / ".dockerignore")
    os.symlink("../elsewhere", ctx / ".dockerignore")
    assert load_ignore(ctx, None).patterns == ()


def test_load_ignore_link_inside_the_context_is_followed(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "conf").mkdir(parents=True)
    (ctx / "conf" / "ignore").write_text("a.txt\n")
    os.symlink("conf/ignore", ctx / ".dockerignore")
    assert load_ignore(ctx, None).matches("a.txt")
    os.unlink(ctx / ".dockerignore")
    os.symlink(f"/{tmp_path.name}/../conf/ignore", ctx / ".dockerignore")  # absolute: at ctx
    assert load_ignore(ctx, None).matches("a.txt")


def test_load_ignore_per_dockerfile_link_stays_in_its_directory(tmp_path: Path) -> None:
    """<Dockerfile>.dockerignore is read from the Dockerfile's directory: a link out of it
    counts as absent, and the context's .dockerignore applies instead."""
    (tmp_path / "host-ignore").write_text("from-host\n")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / ".dockerignore").write_text("from-context\n")
    dockerfile = ctx / "build" / "app.Dockerfile"
    dockerfile.parent.mkdir()
    dockerfile.write_text("FROM scratch\n")
    os.symlink(tmp_path / "host-ignore", ctx / "build" / "app.Dockerfile.dockerignore")
    rules = load_ignore(ctx, dockerfile)
    assert rules.matches("from-context") and not rules.matches("from-host")


def test_load_ignore_directory_is_no_file(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").mkdir()
    assert load_ignore(tmp_path, None).patterns == ()
