"""The predefined proxy build args (HTTP_PROXY ... all_proxy): RUN sees them without an ARG,
and they stay out of the cache key, the image history and the unused-arg warning, unless an
`ARG` declares one, which makes it an ordinary build arg (Dockerfile reference, "Predefined
ARGs"; BuildKit's ProxyEnv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.tools]

SECRET = "http://user:s3cret@proxy.example:3128"


def test_run_sees_proxy_args_in_both_spellings_and_keeps_them_out_of_the_image(
    lb: Layerbuild, tmp_path: Path
) -> None:
    """`--build-arg HTTP_PROXY` reaches RUN as HTTP_PROXY and http_proxy (as BuildKit gives
    both); neither the history, the config nor the layer's files other than the one the RUN
    wrote hold it, and an undeclared proxy arg is not reported as unused."""
    ctx = make_context(
        tmp_path,
        {"Dockerfile": 'FROM busybox\nRUN echo "$HTTP_PROXY|$http_proxy|$no_proxy" > /out\n'},
    )
    args = ("--build-arg", f"HTTP_PROXY={SECRET}", "--build-arg", "no_proxy=localhost")
    root = lb.rootfs(ctx, *args)
    assert (root / "out").read_text() == f"{SECRET}|{SECRET}|localhost\n"
    proc = lb.build(ctx, "-t", "proxied:1", *args)
    assert "not consumed" not in proc.stderr
    history = lb.ok("history", "--no-trunc", "proxied:1").stdout
    assert "RUN echo" in history and "s3cret" not in history
    assert "s3cret" not in json.dumps(lb.config("proxied:1"))


def test_changing_a_proxy_arg_still_hits_the_cache(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo $https_proxy\n"})
    first = lb.report_steps(ctx, "--build-arg", "HTTPS_PROXY=http://a:3128")
    second = lb.report_steps(ctx, "--build-arg", "https_proxy=http://b:3128")
    third = lb.report_steps(ctx)
    assert first[1]["cache"] == "miss"
    assert second[1]["cache"] == third[1]["cache"] == "hit"


def test_a_declared_proxy_arg_is_an_ordinary_arg(lb: Layerbuild, tmp_path: Path) -> None:
    """`ARG HTTP_PROXY` brings the value into the key: a new value misses the RUN."""
    ctx = make_context(
        tmp_path, {"Dockerfile": "FROM busybox\nARG HTTP_PROXY\nRUN echo $HTTP_PROXY\n"}
    )
    lb.report_steps(ctx, "--build-arg", "HTTP_PROXY=http://a:3128")
    again = lb.report_steps(ctx, "--build-arg", "HTTP_PROXY=http://a:3128")
    assert again[2]["cache"] == "hit"
    changed = lb.report_steps(ctx, "--build-arg", "HTTP_PROXY=http://b:3128")
    assert changed[2]["cache"] == "miss"
    assert changed[2]["reason"] == "build arg HTTP_PROXY changed"


def test_an_unused_proxy_arg_gives_no_warning(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nLABEL a=b\n"})
    proc = lb.build(ctx, "--build-arg", "FTP_PROXY=ftp://p", "--build-arg", "NOPE=1")
    assert "build args not consumed by any ARG: NOPE\n" in proc.stderr
