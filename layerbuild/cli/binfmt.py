"""`layerbuild binfmt`: register the installed QEMU interpreters for RUN steps of other
architectures (sandbox/binfmt.py), and show what is registered."""

from __future__ import annotations

import click

from layerbuild.cli.context import Context


@click.command("binfmt")
@click.option(
    "--check", is_flag=True, help="Only show the installed interpreters and their handlers."
)
@click.pass_obj
def binfmt_cmd(ctx: Context, /, check: bool) -> None:
    """Register Debian's qemu-user-static interpreters with binfmt_misc, with the F
    (fix-binary) flag RUN steps of another architecture need (as root)."""
    from layerbuild.engine.platforms import host_platform
    from layerbuild.errors import SandboxError
    from layerbuild.privilege import rootless
    from layerbuild.sandbox import binfmt

    host = host_platform().architecture
    if not check:
        if rootless():
            raise SandboxError(
                "registering binfmt_misc handlers needs root",
                hint="run `layerbuild binfmt` as root, once per boot: every user's builds use it",
            )
        for name in binfmt.register_installed(host):
            click.echo(f"registered {name}")
    installed = binfmt.installed_handlers()
    if not installed:
        raise SandboxError(
            "no QEMU interpreters are installed",
            hint="as root: apt-get install qemu-user-static",
        )
    for name in sorted(installed):
        handler = binfmt.read_handler(name)
        if handler is None:
            state = "not registered"
        else:
            state = f"{'enabled' if handler.enabled else 'disabled'}, flags {handler.flags or '-'}"
        click.echo(f"{name}: {state}")
