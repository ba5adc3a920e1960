"""Real-world benchmark: an apt + pip application image on a Debian base, cold and after a
one-line change of the application, built by layerbuild and by BuildKit (Debian's dockerd) in
the same run, on the same base and with the same network mode (host: dockerd here has no
bridge network). layerbuild is also timed with its own default network (slirp4netns), which
BuildKit cannot do here, to show what the user-mode stack costs.

The base is fixtures/make_debian_base.py's debootstrap image (cached per machine). The RUN
steps download from the Debian mirror and PyPI, so the cold times include the network: the
tools take turns round by round, and the best of --runs rounds counts, to spread the mirror's
and the disk's moods over all of them. PyPI is reached through this machine's CA bundle, handed
in as a secret as a user behind a TLS-intercepting proxy would.

    python bench/apt_bench.py [--work /tmp/apt-bench] [--runs 2]
        [--tools layerbuild,layerbuild-default,buildkit]

Needs root, skopeo and docker.io (dockerd, /usr/bin/docker); the dockerd is started with
/work/shared/tools/dockerd-start when --dockerd-tools points there (the default).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.rebuild_bench import sh, timed  # noqa: E402

CA = Path("/etc/ssl/certs/ca-certificates.crt")
DOCKERFILE = """\
FROM debian
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=secret,id=ca python3 -m venv /venv \\
 && /venv/bin/pip install --no-cache-dir --cert /run/secrets/ca six==1.16.0 idna==3.7
RUN useradd -m app
COPY --chown=app:app app.py /home/app/
USER app
CMD ["/venv/bin/python", "/home/app/app.py"]
"""
APP = 'import six\nprint("hello from app", six.__version__)\n'
PHASES = ("cold", "app-change")


def prepare(work: Path) -> tuple[Path, Path]:
    ctx, base = work / "ctx", work / "debian-oci"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    if not base.exists():
        sh(sys.executable, REPO / "fixtures" / "make_debian_base.py", base)
    return ctx, base


def run_phases(ctx: Path, build: Callable[[], object]) -> list[float]:
    (ctx / "app.py").write_text(APP)
    cold = timed(build)
    (ctx / "app.py").write_text(APP + 'print("one more line")\n')
    return [cold, timed(build)]


def layerbuild(work: Path, ctx: Path, base: Path, network: str) -> list[float]:
    store = work / "lb-store"
    shutil.rmtree(store, ignore_errors=True)
    compileall.compile_dir(REPO / "layerbuild", quiet=1)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SOURCE_DATE_EPOCH", None)
    cmd = [sys.executable, "-m", "layerbuild", "--root", str(store)]
    sh(*cmd, "load", base, "-t", "debian:latest", env=env)
    build = [*cmd, "build", "-q", "--network", network, "--secret", f"id=ca,src={CA}"]
    times = run_phases(ctx, lambda: sh(*build, "-t", "app:1", ctx, env=env))
    out = sh(*cmd, "run", "app:1", env=env)
    assert out.splitlines() == ["hello from app 1.16.0", "one more line"], out
    return times


def buildkit(work: Path, ctx: Path, base: Path, tools: Path) -> list[float]:
    state = work / "dockerd"
    host = sh(tools / "dockerd-start", state).strip().splitlines()[-1]
    env = {**os.environ, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "1"}
    try:
        archive = work / "debian-docker.tar"
        archive.unlink(missing_ok=True)
        sh("skopeo", "copy", "-q", f"oci:{base}:latest", f"docker-archive:{archive}:debian:latest")
        sh("/usr/bin/docker", "rmi", "-f", "app:1", env=env, check=False)
        sh("/usr/bin/docker", "load", "-i", archive, env=env)
        sh("/usr/bin/docker", "builder", "prune", "-af", env=env)
        build = [
            "/usr/bin/docker", "build", "-q", "--network=host", "--secret", f"id=ca,src={CA}",
            "-t", "app:1", str(ctx),
        ]  # fmt: skip
        return run_phases(ctx, lambda: sh(*build, env=env))
    finally:
        sh(tools / "dockerd-stop", state, check=False)


def report(results: dict[str, list[float]]) -> None:
    tools = list(results)
    print(f"\n{'phase':<12}" + "".join(f"{t:>20}" for t in tools), end="")
    ratio = "buildkit" in results and "layerbuild" in results
    print(f"{'layerbuild/buildkit':>22}" if ratio else "")
    for i, phase in enumerate(PHASES):
        row = f"{phase:<12}" + "".join(f"{results[t][i]:>19.2f}s" for t in tools)
        if ratio:
            row += f"{results['layerbuild'][i] / results['buildkit'][i]:>22.2f}"
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/apt-bench"))
    parser.add_argument("--tools", default="layerbuild,layerbuild-default,buildkit")
    parser.add_argument("--dockerd-tools", type=Path, default=Path("/work/shared/tools"))
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    ctx, base = prepare(args.work)
    results: dict[str, list[float]] = {}
    for round_ in range(args.runs):
        for tool in args.tools.split(","):
            print(f"{tool} (round {round_ + 1}/{args.runs}) ...", flush=True)
            if tool == "layerbuild":
                times = layerbuild(args.work, ctx, base, "host")
            elif tool == "layerbuild-default":
                times = layerbuild(args.work, ctx, base, "default")
            elif tool == "buildkit":
                times = buildkit(args.work, ctx, base, args.dockerd_tools)
            else:
                raise SystemExit(f"unknown tool {tool!r}: see --tools")
            print("  " + "  ".join(f"{p} {t:.2f}s" for p, t in zip(PHASES, times, strict=True)))
            best = results.get(tool, times)
            results[tool] = [min(a, b) for a, b in zip(best, times, strict=True)]
    print("\nnetwork: host for layerbuild and buildkit; default (slirp4netns) for "
          "layerbuild-default")
    if args.runs > 1:
        print(f"best of {args.runs} rounds:")
    report(results)


if __name__ == "__main__":
    main()
