"""The image configuration (OCI image-spec config.md, with Docker's extra keys).

Values are immutable: derive a new config with `dataclasses.replace` or the `with_*` helpers,
as go-containerregistry's `mutate` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from layerbuild.digest import Digest, canonical_json, sha256_bytes
from layerbuild.errors import ImageFormatError


@dataclass(frozen=True, slots=True)
class Healthcheck:
    """The config's Healthcheck, in Docker's units (nanoseconds)."""

    test: tuple[str, ...]  # ("NONE",) disables; ("CMD", ...) or ("CMD-SHELL", cmd)
    interval: int = 0  # nanoseconds, as Docker stores them; 0 = inherit default
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Test": list(self.test)}
        for key, value in (
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
            ("Retries", self.retries),
        ):
            if value:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Healthcheck:
        return cls(
            test=tuple(obj.get("Test") or ()),
            interval=int(obj.get("Interval") or 0),
            timeout=int(obj.get("Timeout") or 0),
            start_period=int(obj.get("StartPeriod") or 0),
            start_interval=int(obj.get("StartInterval") or 0),
            retries=int(obj.get("Retries") or 0),
        )


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """The runtime defaults of an image ("config" in the image config JSON)."""

    user: str = ""
    env: tuple[str, ...] = ()  # "KEY=value", in order
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    healthcheck: Healthcheck | None = None
    shell: tuple[str, ...] | None = None
    on_build: tuple[str, ...] = ()
    args_escaped: bool = False

    def env_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def with_env(self, key: str, value: str) -> ContainerConfig:
        """Set one variable, keeping its position when it exists (as Docker does)."""
        items = list(self.env)
        for i, item in enumerate(items):
            if item.partition("=")[0] == key:
                items[i] = f"{key}={value}"
                break
        else:
            items.append(f"{key}={value}")
        return replace(self, env=tuple(items))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in sorted(self.exposed_ports)}
        if self.env:
            out["Env"] = list(self.env)
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.volumes:
            out["Volumes"] = {v: {} for v in sorted(self.volumes)}
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_json()
        if self.shell is not None:
            out["Shell"] = list(self.shell)
        if self.on_build:
            out["OnBuild"] = list(self.on_build)
        if self.args_escaped:
            out["ArgsEscaped"] = True
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any] | None) -> ContainerConfig:
        obj = obj or {}
        hc = obj.get("Healthcheck")
        ep = obj.get("Entrypoint")
        cmd = obj.get("Cmd")
        shell = obj.get("Shell")
        return cls(
            user=obj.get("User") or "",
            env=tuple(obj.get("Env") or ()),
            entrypoint=tuple(ep) if ep is not None else None,
            cmd=tuple(cmd) if cmd is not None else None,
            working_dir=obj.get("WorkingDir") or "",
            labels=tuple(sorted((obj.get("Labels") or {}).items())),
            exposed_ports=tuple(sorted(obj.get("ExposedPorts") or {})),
            volumes=tuple(sorted(obj.get("Volumes") or {})),
            stop_signal=obj.get("StopSignal") or "",
            healthcheck=Healthcheck.from_json(hc) if hc else None,
            shell=tuple(shell) if shell else None,
            on_build=tuple(obj.get("OnBuild") or ()),
            args_escaped=bool(obj.get("ArgsEscaped")),
        )


@dataclass(frozen=True, slots=True)
class History:
    """One entry of the config's history: the step that made a layer, or an empty one."""

    created_by: str = ""
    created: str | None = None  # RFC 3339
    comment: str = ""
    empty_layer: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.created:
            out["created"] = self.created
        if self.created_by:
            out["created_by"] = self.created_by
        if self.comment:
            out["comment"] = self.comment
        if self.empty_layer:
            out["empty_layer"] = True
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> History:
        return cls(
            created_by=obj.get("created_by") or "",
            created=obj.get("created"),
            comment=obj.get("comment") or "",
            empty_layer=bool(obj.get("empty_layer")),
        )


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The OCI image config: the runtime settings, the layers' diff ids and history."""

    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None
    created: str | None = None
    author: str = ""
    config: ContainerConfig = field(default_factory=ContainerConfig)
    diff_ids: tuple[Digest, ...] = ()
    history: tuple[History, ...] = ()

    def with_layer(self, diff_id: Digest, history: History) -> ImageConfig:
        return replace(self, diff_ids=(*self.diff_ids, diff_id), history=(*self.history, history))

    def with_history(self, history: History) -> ImageConfig:
        return replace(self, history=(*self.history, history))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.created:
            out["created"] = self.created
        if self.author:
            out["author"] = self.author
        out["config"] = self.config.to_json()
        out["rootfs"] = {"type": "layers", "diff_ids": [str(d) for d in self.diff_ids]}
        if self.history:
            out["history"] = [h.to_json() for h in self.history]
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @property
    def digest(self) -> Digest:
        return sha256_bytes(self.to_bytes())

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ImageConfig:
        try:
            rootfs = obj.get("rootfs") or {}
            return cls(
                architecture=obj.get("architecture") or "",
                os=obj.get("os") or "",
                variant=obj.get("variant") or None,
                created=obj.get("created"),
                author=obj.get("author") or "",
                config=ContainerConfig.from_json(obj.get("config")),
                diff_ids=tuple(Digest(d) for d in rootfs.get("diff_ids") or ()),
                history=tuple(History.from_json(h) for h in obj.get("history") or ()),
            )
        except (TypeError, ValueError, AttributeError) as e:
            raise ImageFormatError(f"invalid image config: {e}") from e

    @classmethod
    def from_bytes(cls, data: bytes) -> ImageConfig:
        try:
            obj = json.loads(data)
        except ValueError as e:
            raise ImageFormatError(f"image config is not JSON: {e}") from e
        if not isinstance(obj, dict):
            raise ImageFormatError("image config is not a JSON object")
        return cls.from_json(obj)
