"""QEMU user emulation through binfmt_misc: whether a RUN of a foreign architecture can run
here, and registering the installed interpreters (`layerbuild binfmt`).

The kernel runs a foreign ELF binary through the interpreter a binfmt_misc handler names. A RUN
runs inside the sandbox's mount namespace, under the image's root, where the host's
`/usr/libexec/qemu-binfmt/...` does not exist; only a handler registered with the F
(fix-binary) flag works there, because the kernel opened its interpreter when it was registered
(docs/run.md, "Other architectures"). The same holds in a rootless build's user namespace.

Debian's `qemu-user-static` installs the interpreters and their handler lines, in systemd's
format (`/usr/lib/binfmt.d/qemu-*.conf`, the F flag included) and in update-binfmts' format
(`/usr/share/binfmts/qemu-*`, `fix_binary yes`); without systemd-binfmt or binfmt-support
nothing registers them, which is what `register_installed` does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from layerbuild.errors import SandboxError

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
CONF_DIRS = (Path("/usr/lib/binfmt.d"), Path("/etc/binfmt.d"))
# OCI architecture -> QEMU's name for it (the handler is "qemu-<name>")
QEMU_ARCH = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "arm": "arm",
    "386": "i386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64le": "mips64el",
    "loong64": "loongarch64",
}
# architectures the host's kernel runs without emulation
_NATIVE = {"amd64": frozenset({"amd64", "386"}), "arm64": frozenset({"arm64"})}
_INSTALL_HINT = (
    "as root: apt-get install qemu-user-static, then `layerbuild binfmt` (registers the "
    "installed QEMU interpreters with the F flag), or `update-binfmts --enable {handler}` "
    "with binfmt-support"
)


@dataclass(frozen=True)
class Handler:
    """A registered binfmt_misc handler, as /proc/sys/fs/binfmt_misc/<name> shows it."""

    name: str
    enabled: bool
    interpreter: str
    flags: str


def needs_emulation(architecture: str, host_architecture: str) -> bool:
    """Whether binaries of `architecture` need an interpreter on a `host_architecture` host
    (an image that names no architecture is taken as the host's)."""
    native = _NATIVE.get(host_architecture, frozenset({host_architecture}))
    return bool(architecture) and architecture not in native


def handler_name(architecture: str) -> str:
    return f"qemu-{QEMU_ARCH.get(architecture, architecture)}"


def parse_handler(name: str, text: str) -> Handler:
    """The handler from its /proc file: `enabled`, `interpreter PATH`, `flags: POCF`, ..."""
    lines = text.splitlines()
    fields = dict(line.partition(" ")[::2] for line in lines[1:])
    return Handler(
        name,
        enabled=bool(lines) and lines[0].strip() == "enabled",
        interpreter=fields.get("interpreter", "").strip(),
        flags=fields.get("flags:", "").strip(),
    )


def read_handler(name: str, root: Path = BINFMT_DIR) -> Handler | None:
    try:
        return parse_handler(name, (root / name).read_text())
    except FileNotFoundError:
        return None


def require_emulation(architecture: str, host_architecture: str, root: Path = BINFMT_DIR) -> None:
    """SandboxError saying how to add it when a RUN of `architecture` cannot run here."""
    if not needs_emulation(architecture, host_architecture):
        return
    name = handler_name(architecture)
    hint = _INSTALL_HINT.format(handler=name)
    what = f"RUN for linux/{architecture} on this linux/{host_architecture} machine needs QEMU"
    if not (root / "status").exists():
        raise SandboxError(
            f"{what}, and binfmt_misc is not mounted at {root}",
            hint="as root: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; then "
            + hint.removeprefix("as root: "),
        )
    handler = read_handler(name, root)
    if handler is None or not handler.enabled:
        state = "is not registered" if handler is None else "is disabled"
        raise SandboxError(f"{what}: the binfmt_misc handler {name} {state}", hint=hint)
    if "F" not in handler.flags:
        raise SandboxError(
            f"{what}: the binfmt_misc handler {name} is registered without the F (fix-binary) "
            f"flag, so its interpreter {handler.interpreter} cannot be found inside the sandbox",
            hint="as root: `layerbuild binfmt` registers it again with the F flag",
        )


def conf_line(line: str) -> tuple[str, str] | None:
    """(name, registration line with the F flag) of a binfmt.d line, None for no handler."""
    line = line.strip()
    if not line or line[0] in "#;":
        return None
    parts = line[1:].split(line[0])
    if len(parts) < 7:
        return None
    name, flags = parts[0], parts[6]
    if "F" not in flags:
        parts[6] = flags + "F"
    return name, line[0] + line[0].join(parts)


def installed_handlers(dirs: tuple[Path, ...] = CONF_DIRS) -> dict[str, str]:
    """name -> registration line of every installed QEMU handler (later directories win)."""
    found: dict[str, str] = {}
    for directory in dirs:
        for conf in sorted(directory.glob("qemu-*.conf")) if directory.is_dir() else ():
            for line in conf.read_text().splitlines():
                parsed = conf_line(line)
                if parsed is not None:
                    found[parsed[0]] = parsed[1]
    return found


def register_installed(host_architecture: str, root: Path = BINFMT_DIR) -> list[str]:
    """Register every installed QEMU interpreter of a foreign architecture with the F flag
    (root only); a handler registered without F is replaced. Returns the names registered."""
    if not (root / "register").exists():
        from layerbuild.sandbox.linux import mount

        mount("binfmt_misc", root, "binfmt_misc")
    native = {handler_name(a) for a in _NATIVE.get(host_architecture, {host_architecture})}
    done = []
    for name, line in sorted(installed_handlers().items()):
        if name in native:
            continue
        interpreter = line[1:].split(line[0])[5]
        if not os.path.exists(interpreter):
            continue  # a handler file whose package is gone
        handler = read_handler(name, root)
        if handler is not None and handler.enabled and "F" in handler.flags:
            continue
        if handler is not None:
            (root / name).write_text("-1")  # removes it: a handler cannot be changed in place
        (root / "register").write_text(line)
        done.append(name)
    return done
