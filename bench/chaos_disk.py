"""Disk mode of bench/chaos.py: `pull`, `build` and `tag` on a store that runs out of space.

The store lives on a small tmpfs. Before each command a filler file leaves less free space than
the command needs (a random share of it), so the command meets ENOSPC somewhere in its writes:
a blob half-downloaded, a layer half-packed, a name half-written. After each one: no traceback,
every blob hashes to its name, every name the store had still points where it pointed. Then the
filler goes, the same command must succeed, and `fsck` must find the store clean.

Needs root (a tmpfs mount) and Debian's docker-registry.
"""

from __future__ import annotations

import random
from pathlib import Path

from chaos_checks import FaultTally, account, names, recovered, run_cli

from tests.support.disks import fill, tmpfs

MB = 1 << 20
TMPFS_SIZE = 160 * MB


def _seed_images(work: Path, host: str, rng: random.Random, count: int) -> list[tuple[str, int]]:
    """Random 3-layer images pushed to the registry: (reference, total size)."""
    from layerbuild.registry.push import push
    from layerbuild.store.layout import Store
    from tests.integration.registry.images import random_image

    seed = Store.open(work / "seed")
    images = []
    for i in range(count):
        sizes = [rng.randint(1, 12) * MB for _ in range(3)]
        ref = f"{host}/chaos/img{i}:1"
        push(seed, random_image(seed, sizes), ref)
        images.append((ref, sum(sizes)))
    return images


class DiskChaos:
    def __init__(self, work: Path, store: Path, disk: Path, rng: random.Random) -> None:
        self.work, self.store, self.disk, self.rng = work, store, disk, rng
        self.tally = FaultTally()
        self.ctx = work / "ctx"
        self.ctx.mkdir(exist_ok=True)
        (self.ctx / "Dockerfile").write_text("FROM scratch\nCOPY big /big\n")

    def settle(self, keep: str) -> None:
        """Back to a small store (the kept image and its tags): what one fault's retry added
        must not eat the next fault's margin."""
        for name, digest in names(self.store).items():
            if digest != names(self.store).get(keep):
                run_cli(self.store, "rmi", name)
        run_cli(self.store, "cache", "prune", "--all")
        run_cli(self.store, "prune")

    def _attempt(self, label: str, args: tuple[str, ...], need: int, new: str | None) -> None:
        before = names(self.store)
        filler = fill(self.disk, int(need * self.rng.uniform(0.0, 0.9)))
        proc = run_cli(self.store, *args)
        self.tally.faults += 1
        changes = frozenset() if new is None else frozenset({new})
        account(self.tally, proc, self.store, before, changes=changes, label=label)
        filler.unlink()
        again = run_cli(self.store, *args)
        if recovered(self.tally, again, f"{label} (again)"):
            # --quick: account() has just re-hashed every blob
            check = run_cli(self.store, "fsck", "--quick")
            if check.returncode != 0:
                self.tally.not_recovered += 1
                print(f"{label}: fsck after the retry: {check.stdout[-800:]}")

    def pull(self, n: int, ref: str, size: int) -> None:
        short = ref.split("/", 1)[1]
        self._attempt(f"fault {n} (pull {short})", ("pull", ref), size, ref)

    def build(self, n: int) -> None:
        size = self.rng.randint(2, 24) * MB
        (self.ctx / "big").write_bytes(self.rng.randbytes(size))
        args = ("build", "--progress", "plain", "-t", "chaos-built:1", str(self.ctx))
        self._attempt(f"fault {n} (build {size // MB} MB)", args, size, "chaos-built:1")

    def tag(self, n: int, source: str) -> None:
        args = ("tag", source, f"chaos-tag:{n}")
        self._attempt(f"fault {n} (tag)", args, 4096, f"chaos-tag:{n}")


def run(faults: int, work: Path, seed: int) -> FaultTally:
    from tests.support.registry import RegistryServer

    rng = random.Random(seed)
    registry = RegistryServer(work / "registry").start()
    try:
        images = _seed_images(work, registry.host, rng, 6)
        with tmpfs(work / "disk", f"{TMPFS_SIZE}") as disk:
            store = disk / "store"
            keep = images[0][0]
            if run_cli(store, "pull", keep).returncode != 0:
                raise SystemExit("the first pull failed")
            chaos = DiskChaos(work, store, disk, rng)
            for n in range(1, faults + 1):
                chaos.settle(keep)
                op = rng.choice(("pull", "pull", "build", "tag"))
                if op == "pull":
                    chaos.pull(n, *rng.choice(images[1:]))
                elif op == "build":
                    chaos.build(n)
                else:
                    chaos.tag(n, keep)
                if n % 20 == 0:
                    print(f"after {n}: {chaos.tally.line()}", flush=True)
            return chaos.tally
    finally:
        registry.kill()
