"""binfmt_misc handlers: what a foreign RUN needs and what a missing one says (sandbox/binfmt)."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerbuild.errors import SandboxError
from layerbuild.sandbox.binfmt import conf_line, needs_emulation, parse_handler, require_emulation

DEBIAN_CONF = (
    r":qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00"
    r"\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
    ":/usr/libexec/qemu-binfmt/aarch64-binfmt-P:{flags}"
)
HANDLER = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: {flags}
offset 0
magic 7f454c460201010000000000000000000200b700
"""


def _binfmt(tmp_path: Path, flags: str | None) -> Path:
    (tmp_path / "status").write_text("enabled\n")
    if flags is not None:
        (tmp_path / "qemu-aarch64").write_text(HANDLER.format(flags=flags))
    return tmp_path


def test_native_architectures_need_no_handler(tmp_path: Path) -> None:
    assert not needs_emulation("amd64", "amd64")
    assert not needs_emulation("386", "amd64")
    assert needs_emulation("arm64", "amd64")
    require_emulation("amd64", "amd64", root=tmp_path / "absent")


def test_a_missing_handler_says_how_to_add_it(tmp_path: Path) -> None:
    with pytest.raises(SandboxError) as e:
        require_emulation("arm64", "amd64", root=_binfmt(tmp_path, None))
    assert "qemu-aarch64 is not registered" in e.value.message
    assert e.value.hint is not None
    assert "layerbuild binfmt" in e.value.hint
    assert "update-binfmts --enable qemu-aarch64" in e.value.hint


def test_binfmt_misc_not_mounted(tmp_path: Path) -> None:
    with pytest.raises(SandboxError) as e:
        require_emulation("arm64", "amd64", root=tmp_path)
    assert "binfmt_misc is not mounted" in e.value.message
    assert e.value.hint is not None and "mount -t binfmt_misc" in e.value.hint


def test_a_handler_without_fix_binary_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxError) as e:
        require_emulation("arm64", "amd64", root=_binfmt(tmp_path, "OC"))
    assert "without the F (fix-binary) flag" in e.value.message
    require_emulation("arm64", "amd64", root=_binfmt(tmp_path, "POCF"))


def test_parse_handler() -> None:
    handler = parse_handler("qemu-aarch64", HANDLER.format(flags="POF"))
    assert handler.enabled
    assert handler.interpreter == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    assert handler.flags == "POF"


def test_conf_line_adds_the_fix_binary_flag() -> None:
    name, line = conf_line(DEBIAN_CONF.format(flags="OC")) or ("", "")
    assert name == "qemu-aarch64"
    assert line.endswith(":OCF")
    assert conf_line(DEBIAN_CONF.format(flags="OPF")) == ("qemu-aarch64",
                                                          DEBIAN_CONF.format(flags="OPF"))
    assert conf_line("# a comment") is None
