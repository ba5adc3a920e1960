"""Registry mode of bench/chaos.py: pull, push and build through a proxy that injects faults.

A real Distribution registry sits behind tests/support/faultproxy.py. Before each command one
fault is armed at random: cut, truncated or reset answers, 5xx/429 with or without Retry-After,
a tampered body, a redirect to the proxy's second port, a stall, or an upload cut part-way; on
manifests, blobs, uploads or the version check; once, a few times, or for good. After each
command: no traceback, every blob in the store hashes to its name, every name still points
where it pointed, and any tag the registry holds names a complete image (pulled past the proxy).
Then the fault is dropped and the same command must succeed.

Retries are shortened (LAYERBUILD_REGISTRY_RETRIES=2, _BACKOFF=0.05, _TIMEOUT=2) so that a
stall costs two seconds, not two minutes.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

from chaos_checks import FaultTally, account, names, recovered, run_cli, unverified_blobs

MB = 1 << 20
FAST = {
    "LAYERBUILD_REGISTRY_RETRIES": "2",
    "LAYERBUILD_REGISTRY_BACKOFF": "0.05",
    "LAYERBUILD_REGISTRY_TIMEOUT": "2",
}
PATHS = {
    "manifest": r"/manifests/",
    "blob": r"/blobs/sha256:",
    "upload": r"/blobs/uploads/",
    "ping": r"^/v2/$",
}


def _random_fault(rng: random.Random, op: str) -> tuple[str, str, object]:
    """(method, path regex, Fault) for one command of kind `op`."""
    from tests.support import faultproxy as fp

    where = rng.choice(
        ("manifest", "blob", "upload", "ping") if op == "push" else ("manifest", "blob", "ping")
    )
    if where == "upload":
        method = rng.choice(("POST", "PATCH", "PUT"))
    elif op == "push" and where == "manifest":
        method = rng.choice(("PUT", "GET", "HEAD"))
    elif op == "push" and where == "blob":
        method = "HEAD"
    else:
        method = "GET"
    kinds = [fp.CUT, fp.TRUNCATE, fp.RESET, fp.STATUS, fp.STATUS, fp.TAMPER, fp.REDIRECT, fp.STALL]
    if method in ("PATCH", "PUT"):
        kinds.append(fp.CUT_UPLOAD)
    kind = rng.choice(kinds)
    status = rng.choice((500, 502, 503, 504, 429))
    retry_after = rng.choice((None, "1", "0"))
    fault = fp.Fault(kind, after=rng.randint(0, 4096), status=status, retry_after=retry_after)
    return method, PATHS[where], fault


class RegistryChaos:
    def __init__(self, work: Path, upstream: str, proxy: object, rng: random.Random) -> None:
        from tests.support.faultproxy import FaultProxy

        assert isinstance(proxy, FaultProxy)
        self.work, self.upstream, self.proxy, self.rng = work, upstream, proxy, rng
        self.store = work / "store"
        self.check_store = work / "check"
        self.tally = FaultTally()
        self.remote_broken = 0

    def _arm(self, op: str) -> None:
        method, path, fault = _random_fault(self.rng, op)
        times = self.rng.choice((1, 1, 2, 3, None))
        self.proxy.add(method, path, fault, nth=self.rng.choice((1, 1, 2)), times=times)  # type: ignore[arg-type]

    def _remote_complete(self, repo_tag: str, label: str) -> None:
        """A tag the registry holds must pull, past the proxy, as a complete image."""
        direct = f"{self.upstream}/{repo_tag}"
        pulled = run_cli(self.check_store, "pull", direct)
        if pulled.returncode == 0:
            bad = unverified_blobs(self.check_store)
            if bad:
                self.remote_broken += 1
                print(f"{label}: the registry's {repo_tag} pulled with bad blobs {bad}")
        elif "manifest unknown" not in pulled.stderr and "not found" not in pulled.stderr:
            self.remote_broken += 1
            print(f"{label}: the registry's {repo_tag} is broken: {pulled.stderr[-600:]}")
        run_cli(self.check_store, "rmi", direct)

    def attempt(self, n: int, op: str, args: tuple[str, ...], new: str | None, tag: str) -> None:
        label = f"fault {n} ({op} {tag})"
        before = names(self.store)
        injected = len(self.proxy.injected)
        self._arm(op)
        proc = run_cli(self.store, *args)
        self.proxy.clear()
        if len(self.proxy.injected) > injected:
            self.tally.faults += 1
        changes = frozenset() if new is None else frozenset({new})
        account(self.tally, proc, self.store, before, changes=changes, label=label)
        if op == "push":
            self._remote_complete(tag, label)
        recovered(self.tally, run_cli(self.store, *args), f"{label} (again)")


def run(faults: int, work: Path, seed: int) -> FaultTally:
    from layerbuild.registry.push import push
    from layerbuild.store.layout import Store
    from tests.integration.registry.images import random_image
    from tests.support.faultproxy import FaultProxy
    from tests.support.registry import RegistryServer

    os.environ.update(FAST)
    rng = random.Random(seed)
    registry = RegistryServer(work / "registry").start()
    proxy = FaultProxy(registry.port)
    try:
        seed_store = Store.open(work / "seed")
        for i in range(4):
            sizes = [rng.randint(1, 6) * MB for _ in range(rng.randint(1, 3))]
            push(seed_store, random_image(seed_store, sizes), f"{registry.host}/chaos/base{i}:1")
        chaos = RegistryChaos(work, registry.host, proxy, rng)
        (work / "ctx").mkdir()
        n = 0
        while chaos.tally.faults < faults and n < faults * 3:
            n += 1
            op = rng.choice(("pull", "pull", "push", "build"))
            if op == "pull":
                tag = f"chaos/base{rng.randrange(4)}:1"
                ref = f"{proxy.host}/{tag}"
                run_cli(chaos.store, "rmi", ref)
                run_cli(chaos.store, "prune")
                chaos.attempt(n, op, ("pull", ref), ref, tag)
            elif op == "push":
                local = f"chaos-local:{n}"
                store = Store.open(chaos.store)
                store.refs.set(local, random_image(store, [rng.randint(1, 6) * MB]))
                tag = f"chaos/pushed{n}:1"
                chaos.attempt(n, op, ("push", local, f"{proxy.host}/{tag}"), None, tag)
            else:
                tag = f"chaos/base{rng.randrange(4)}:1"
                (work / "ctx" / "Dockerfile").write_text(f"FROM {proxy.host}/{tag}\nLABEL n={n}\n")
                for name in names(chaos.store):
                    if name.startswith(proxy.host):
                        run_cli(chaos.store, "rmi", name)
                run_cli(chaos.store, "prune")
                args = ("build", "-t", "chaos-built:1", str(work / "ctx"))
                chaos.attempt(n, op, args, "chaos-built:1", tag)
            if n % 20 == 0:
                print(
                    f"after {n} commands: {chaos.tally.line()}, broken in the registry "
                    f"{chaos.remote_broken}",
                    flush=True,
                )
        kinds = Counter(f"{i.kind} {i.method}" for i in proxy.injected)
        print("faults by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        print(f"tags in the registry that name an incomplete image: {chaos.remote_broken}")
        chaos.tally.lost_names += chaos.remote_broken
        return chaos.tally
    finally:
        proxy.close()
        registry.kill()
