"""Metadata instructions, checked in `layerbuild inspect` and in the config skopeo reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild, OciImage, make_context, run_tool, unpack

pytestmark = pytest.mark.tools

BUSYBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

EVERYTHING = """\
ARG BASE=busybox
FROM ${BASE}
ARG BASE
ARG VERSION=1.0
ARG OVERRIDE=from-arg
ENV OVERRIDE=from-env
ENV APP_HOME=/srv/app PATH=/srv/app/bin:$PATH
LABEL version=$VERSION "multi word"="a b" home=${APP_HOME}
LABEL arg.vs.env=$OVERRIDE base=$BASE undeclared=x${NOT_DECLARED}y
EXPOSE 80 443/udp 8080/tcp
VOLUME ["/data", "/logs"]
VOLUME /cache
USER app:app
WORKDIR $APP_HOME
WORKDIR sub
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=4 \\
  CMD wget -q -O- http://localhost/ || exit 1
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
CMD echo "hi $APP_HOME"
"""


Everything = tuple[dict[str, Any], dict[str, Any], Path]


@pytest.fixture
def everything(lb: Layerbuild, tmp_path: Path) -> Everything:
    """The image of EVERYTHING: (inspect JSON, config as skopeo reads it, OCI tarball).

    skopeo's parsed config (`--config`) is the OCI image-spec struct, which has no Healthcheck
    or Shell (Docker extensions): the parsed fields are checked against the raw config, and the
    raw config (`--config --raw`, still fetched by skopeo) is what the tests read.
    """
    ctx = make_context(tmp_path, {"Dockerfile": EVERYTHING})
    out = lb.build_oci(
        ctx, "--build-arg", "VERSION=2.0", "--build-arg", "OVERRIDE=cli", tag="meta:1"
    )
    ref = f"oci-archive:{out}:1"
    parsed = json.loads(run_tool("skopeo", "inspect", "--config", ref))
    raw = json.loads(run_tool("skopeo", "inspect", "--config", "--raw", ref))
    for key, value in parsed["config"].items():
        assert raw["config"][key] == value, key
    assert parsed["history"] == raw["history"]
    return lb.inspect("meta:1"), raw, out


def test_config_fields(everything: Everything) -> None:
    """Every metadata instruction lands in the config as Docker writes it; inspect and
    skopeo agree on the config."""
    inspected, skopeo, _ = everything
    c = skopeo["config"]
    assert c["Env"] == [
        f"PATH=/srv/app/bin:{BUSYBOX_PATH}",  # updated in place, where the base had it
        "OVERRIDE=from-env",
        "APP_HOME=/srv/app",
    ]
    assert c["Labels"] == {
        "version": "2.0",  # --build-arg beats the ARG default
        "multi word": "a b",
        "home": "/srv/app",
        "arg.vs.env": "from-env",  # ENV beats ARG, even one given with --build-arg
        "base": "busybox",  # a global ARG re-declared in the stage takes the global value
        "undeclared": "xy",
    }
    assert c["ExposedPorts"] == {"80/tcp": {}, "443/udp": {}, "8080/tcp": {}}
    assert c["Volumes"] == {"/data": {}, "/logs": {}, "/cache": {}}
    assert c["User"] == "app:app"
    assert c["WorkingDir"] == "/srv/app/sub"
    assert c["StopSignal"] == "SIGQUIT"
    assert c["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"],
        "Interval": 30_000_000_000,
        "Timeout": 5_000_000_000,
        "StartPeriod": 10_000_000_000,
        "Retries": 4,
    }
    assert c["Shell"] == ["/bin/ash", "-eo", "pipefail", "-c"]
    # shell-form CMD goes through SHELL and is not expanded at build time
    assert c["Cmd"] == ["/bin/ash", "-eo", "pipefail", "-c", 'echo "hi $APP_HOME"']
    assert inspected["Config"]["Cmd"] == c["Cmd"]
    assert inspected["Env"] == c["Env"]
    assert inspected["Labels"] == c["Labels"]
    assert skopeo["architecture"] == "amd64" and skopeo["os"] == "linux"


def test_workdir_creates_directories_owned_by_user(everything: Everything) -> None:
    """WORKDIR creates the directory (and parents) in a layer, owned by the current USER."""
    _, _, out = everything
    root = unpack(out, "1")
    for path in ("srv/app", "srv/app/sub"):
        st = (root / path).stat()
        assert (root / path).is_dir()
        assert (st.st_uid, st.st_gid) == (1000, 1000)
    assert (root / "srv").stat().st_uid == 1000


def test_history_matches_layers(everything: Everything) -> None:
    """One history entry per instruction after FROM; entries with empty_layer=false are exactly
    as many as the layers and in order; metadata-only steps are empty_layer."""
    _, skopeo, out = everything
    history = skopeo["history"]
    assert history[0]["created_by"].startswith("fixtures/make_busybox_base.py")
    own = history[1:]
    non_empty = [h["created_by"] for h in own if not h.get("empty_layer")]
    assert non_empty == ["WORKDIR /srv/app", "WORKDIR sub"]
    layers = OciImage(out).manifest()["layers"]
    assert len([h for h in history if not h.get("empty_layer")]) == len(layers)
    assert len(skopeo["rootfs"]["diff_ids"]) == len(layers)
    by = [h["created_by"] for h in own]
    instructions = EVERYTHING.replace("\\\n", "").splitlines()[2:]
    assert len(own) == len(instructions)  # BuildKit records ARG steps too
    assert by[:3] == ["ARG BASE", "ARG VERSION=1.0", "ARG OVERRIDE=from-arg"]
    assert "EXPOSE 80 443/udp 8080/tcp" in by
    assert any(b.startswith("LABEL ") for b in by)
    assert all(h.get("empty_layer") for h in own if not h["created_by"].startswith("WORKDIR"))


def test_entrypoint_resets_an_inherited_cmd(lb: Layerbuild, tmp_path: Path) -> None:
    """ENTRYPOINT drops the CMD of the base image ([/bin/sh] in busybox), but keeps a CMD set
    earlier in the same stage; shell-form ENTRYPOINT uses the default /bin/sh -c."""
    ctx = make_context(tmp_path, {"Dockerfile": 'FROM busybox\nENTRYPOINT ["/bin/echo"]\n'})
    lb.build(ctx, "-t", "ep:1")
    config = lb.config("ep:1")["config"]
    assert config["Entrypoint"] == ["/bin/echo"]
    assert "Cmd" not in config or config["Cmd"] is None

    (ctx / "Dockerfile").write_text('FROM busybox\nCMD ["hello"]\nENTRYPOINT echo\n')
    lb.build(ctx, "-t", "ep:2")
    config = lb.config("ep:2")["config"]
    assert config["Entrypoint"] == ["/bin/sh", "-c", "echo"]
    assert config["Cmd"] == ["hello"]


def test_cmd_from_base_is_inherited(lb: Layerbuild, tmp_path: Path) -> None:
    """Without CMD/ENTRYPOINT the base image's CMD and ENV are kept."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nLABEL a=b\n"})
    lb.build(ctx, "-t", "inh:1")
    config = lb.config("inh:1")["config"]
    assert config["Cmd"] == ["/bin/sh"]
    assert config["Env"] == [f"PATH={BUSYBOX_PATH}"]


def test_healthcheck_none_and_exec_form(lb: Layerbuild, tmp_path: Path) -> None:
    """HEALTHCHECK NONE disables an inherited check; exec form keeps the argv as CMD."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": 'FROM busybox AS a\nHEALTHCHECK CMD ["/bin/true"]\n'
            "FROM a AS b\nHEALTHCHECK NONE\nFROM a\n"
        },
    )
    lb.build(ctx, "-t", "hc:a", "--target", "a")
    lb.build(ctx, "-t", "hc:b", "--target", "b")
    assert lb.config("hc:a")["config"]["Healthcheck"]["Test"] == ["CMD", "/bin/true"]
    assert lb.config("hc:b")["config"]["Healthcheck"]["Test"] == ["NONE"]


def test_global_arg_in_from_and_build_arg(lb: Layerbuild, tmp_path: Path) -> None:
    """ARG before FROM picks the base image; --build-arg overrides it; a global ARG is not
    visible in the stage unless re-declared."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "ARG BASE=busybox\nARG TAG=latest\nFROM ${BASE}:${TAG}\n"
            "LABEL tag=x${TAG}\n"
        },
    )
    lb.build(ctx, "-t", "g:1")
    assert lb.config("g:1")["config"]["Labels"] == {"tag": "x"}
    proc = lb("build", "--no-pull", "-t", "g:2", "--build-arg", "TAG=nope", ctx)
    assert proc.returncode != 0
    assert "busybox:nope" in proc.stderr


def test_env_forms_and_references(lb: Layerbuild, tmp_path: Path) -> None:
    """`ENV k v` (legacy, value is the rest of the line), `ENV a=1 b=$a` (b sees the old a),
    quoting and escapes."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\nENV LEGACY some value here\nENV a=1\n"
            'ENV a=2 b=$a c="quoted value" d=\\$a\n'
        },
    )
    lb.build(ctx, "-t", "env:1")
    env = lb.config("env:1")["config"]["Env"]
    assert env[1:] == [
        "LEGACY=some value here",
        "a=2",
        "b=1",
        "c=quoted value",
        "d=$a",
    ]
