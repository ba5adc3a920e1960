"""`layerbuild run IMAGE [CMD...]`: the built image runs in the sandbox like `docker run --rm`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]

DOCKERFILE = """\
FROM busybox
RUN echo runner:x:1234:1234::/srv:/bin/sh >> /etc/passwd \\
    && mkdir -p /srv && echo from-image > /srv/msg
COPY --chmod=755 entry.sh /entry.sh
ENV GREETING=hello
WORKDIR /srv
USER runner
ENTRYPOINT ["/entry.sh"]
CMD ["default-arg"]
"""
ENTRY = '#!/bin/sh\necho "$GREETING $(id -u) $(pwd) $(cat msg 2>/dev/null) $*"\nexit ${CODE:-0}\n'


@pytest.fixture
def built(lb: Layerbuild, tmp_path: Path) -> Layerbuild:
    lb.build(make_context(tmp_path, {"Dockerfile": DOCKERFILE, "entry.sh": ENTRY}), "-t", "app:1")
    return lb


def test_run_prints_what_cmd_prints(built: Layerbuild) -> None:
    proc = built.ok("run", "--rm", "app:1")
    assert proc.stdout == "hello 1234 /srv from-image default-arg\n"


def test_args_replace_cmd_and_options_apply(built: Layerbuild) -> None:
    proc = built(
        "run", "-e", "GREETING=hi", "-e", "CODE=7", "-u", "0", "-w", "/", "app:1", "x", "y"
    )
    assert proc.stdout == "hi 0 /  x y\n"  # no msg in /
    assert proc.returncode == 7  # the command's exit status is layerbuild's


def test_entrypoint_override_stdin_and_no_traces(built: Layerbuild, tmp_path: Path) -> None:
    proc = built("run", "--entrypoint", "/bin/cat", "app:1", input="piped\n")
    assert (proc.returncode, proc.stdout) == (0, "piped\n")
    built.ok("run", "-u", "0", "--entrypoint", "", "app:1", "/bin/sh", "-c", "echo x > /srv/msg")
    # nothing of a run is kept
    assert built.ok("run", "app:1").stdout.split()[3] == "from-image"
    missing = built("run", "no-such-image:1")
    assert missing.returncode != 0 and "no-such-image" in missing.stderr
