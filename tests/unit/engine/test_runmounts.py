"""RUN --mount parsing: BuildKit's CSV syntax into values, and errors that name the line."""

from __future__ import annotations

import pytest

from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.parser import parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.engine.runmounts import (
    BindMount,
    CacheMount,
    SecretMount,
    SshMount,
    TmpfsMount,
    describe,
    parse_mount,
    parse_mounts,
)
from layerbuild.engine.runmounts_prepare import ssh_env
from layerbuild.errors import DockerfileError


def _run(line: str) -> ins.Run:
    df = parse_dockerfile(DockerfileSource("Dockerfile", f"FROM busybox\n{line}\n"))
    instr = df.stages[0].instructions[0]
    assert isinstance(instr, ins.Run)
    return instr


def test_cache_defaults_and_options() -> None:
    assert parse_mount("type=cache,target=/root/.cache") == CacheMount(
        "/root/.cache", "/root/.cache"
    )
    m = parse_mount("type=cache,dst=/c,id=pip,sharing=locked,mode=0700,uid=1000,gid=1001,ro")
    assert m == CacheMount("/c", "pip", "locked", None, "/", 0o700, 1000, 1001, True)
    assert parse_mount("type=cache,target=rel", "/work") == CacheMount("/work/rel", "/work/rel")


def test_bind_is_read_only_unless_rw() -> None:
    assert parse_mount("target=/src") == BindMount("/src")
    assert parse_mount("type=bind,src=sub,target=/s,from=build,rw") == BindMount(
        "/s", "sub", "build", True
    )
    assert parse_mount("type=bind,target=/s,readwrite=false") == BindMount("/s")


def test_secret_defaults_to_run_secrets() -> None:
    assert parse_mount("type=secret,id=tok") == SecretMount("tok", "/run/secrets/tok")
    assert parse_mount("type=secret,target=/etc/key,required,mode=0440") == SecretMount(
        "key", "/etc/key", True, 0o440
    )
    assert "content" not in str(describe(SecretMount("tok", "/run/secrets/tok")))


def test_ssh_targets_count_the_ssh_mounts_and_set_ssh_auth_sock() -> None:
    instr = _run(
        "RUN --mount=type=ssh --mount=type=tmpfs,target=/t "
        "--mount=type=ssh,id=gh,required,mode=0741,uid=100,gid=102 "
        "--mount=type=ssh,id=x,target=sock true"
    )
    mounts = parse_mounts(instr, "/w")
    assert [m for m in mounts if isinstance(m, SshMount)] == [
        SshMount("default", "/run/buildkit/ssh_agent.0"),
        SshMount("gh", "/run/buildkit/ssh_agent.1", True, 0o741, 100, 102),
        SshMount("x", "/w/sock"),
    ]
    assert ssh_env(mounts, {}) == {"SSH_AUTH_SOCK": "/run/buildkit/ssh_agent.0"}
    assert ssh_env(mounts, {"SSH_AUTH_SOCK": "/mine"}) == {}  # the step's own ENV wins
    assert ssh_env(mounts[1:2], {}) == {}
    assert describe(mounts[2])["id"] == "gh"


def test_secret_env_is_a_variable_and_a_file_only_with_target() -> None:
    """As BuildKit's dispatchSecret: env= alone gives no file; env= and target= give both."""
    assert parse_mount("type=secret,id=tok,env=TOKEN") == SecretMount("tok", None, env="TOKEN")
    assert parse_mount("type=secret,id=tok,env=TOKEN,target=/t,required") == SecretMount(
        "tok", "/t", True, env="TOKEN"
    )
    assert parse_mount("type=secret,target=/etc/key,env=K") == SecretMount(
        "key", "/etc/key", env="K"
    )
    described = describe(SecretMount("tok", None, env="TOKEN"))
    assert described["env"] == "TOKEN" and described["target"] is None
    assert "env" not in describe(SecretMount("tok", "/run/secrets/tok"))  # keys unchanged


def test_one_variable_per_secret_mount() -> None:
    instr = _run("RUN --mount=type=secret,id=a,env=X --mount=type=secret,id=b,env=X true")
    with pytest.raises(DockerfileError, match="another --mount of this RUN sets the variable X"):
        parse_mounts(instr)
    two = _run("RUN --mount=type=secret,id=a,env=X --mount=type=secret,id=b,env=Y true")
    assert [m.target for m in parse_mounts(two)] == [None, None]


def test_tmpfs_sizes() -> None:
    assert parse_mount("type=tmpfs,target=/t") == TmpfsMount("/t")
    assert parse_mount("type=tmpfs,target=/t,size=64m") == TmpfsMount("/t", 64 << 20)
    assert parse_mount("type=tmpfs,target=/t,size=1000") == TmpfsMount("/t", 1000)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("type=volume,target=/x", "unknown mount type 'volume'"),
        ("type=ssh,source=/x", "unknown key 'source' for type=ssh"),
        ("type=ssh,mode=rw", "not an octal mode"),
        ("type=cache,target=/x,colour=red", "unknown key 'colour' for type=cache"),
        ("type=tmpfs,target=/x,ro", "unknown key 'readonly' for type=tmpfs"),
        ("type=cache", "needs target=PATH"),
        ("type=cache,target=/x,sharing=sometimes", "sharing='sometimes'"),
        ("type=cache,target=/x,mode=rwx", "not an octal mode"),
        ("type=cache,target=/x,uid=root", "uid='root' is not a number"),
        ("type=secret", "needs id=ID"),
        ("type=secret,id=a,env=", "env='' is not a variable name"),
        ("type=secret,id=a,env=A=B", "env='A=B' is not a variable name"),
        ("type=secret,env=A", "needs id=ID"),
        ("type=tmpfs,target=/x,size=lots", "not a size"),
        ("type=bind,target=/", "cannot mount over /"),
        ("type=bind,target=/x,ro,rw", "only one of ro and rw"),
        ("type=bind,target", "not key=value"),
    ],
)
def test_errors_name_the_line_and_the_problem(flag: str, message: str) -> None:
    instr = _run(f"RUN --mount={flag} true")
    with pytest.raises(DockerfileError) as err:
        parse_mounts(instr)
    assert message in str(err.value)
    assert err.value.line == 2 and f"--mount={flag}" in str(err.value)


def test_two_mounts_on_one_target_are_refused() -> None:
    instr = _run("RUN --mount=type=tmpfs,target=/x --mount=type=cache,target=/x true")
    with pytest.raises(DockerfileError, match="another --mount of this RUN has the target /x"):
        parse_mounts(instr)


def test_flags_are_expanded_with_args_and_env() -> None:
    instr = _run("RUN --mount=type=cache,target=$DIR,id=${NAME}-cache true")
    (m,) = parse_mounts(instr, "/", {"DIR": "/var/cache", "NAME": "apt"})
    assert m == CacheMount("/var/cache", "apt-cache")
