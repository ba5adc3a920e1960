"""configdiff: fields by their config JSON names, Env and Labels per key, sets as sets."""

from __future__ import annotations

from layerbuild.image.config import ContainerConfig, ImageConfig
from layerbuild.image.configdiff import ConfigChange, compare_configs


def config(**kw: object) -> ImageConfig:
    return ImageConfig(created="2024-01-01T00:00:00Z", config=ContainerConfig(**kw))  # type: ignore[arg-type]


def test_every_differing_field_once_env_and_labels_per_key() -> None:
    a = config(
        env=("PATH=/bin", "A=1"),
        cmd=("sh",),
        labels=(("v", "1"), ("keep", "x")),
        exposed_ports=("80/tcp",),
        user="root",
        working_dir="/",
    )
    b = config(
        env=("PATH=/bin", "A=2", "B=3"),
        entrypoint=("/init",),
        labels=(("keep", "x"),),
        exposed_ports=("80/tcp", "443/tcp"),
        user="app",
        working_dir="/app",
    )
    assert compare_configs(a, b) == [
        ConfigChange("config.Cmd", ["sh"], None),
        ConfigChange("config.Entrypoint", None, ["/init"]),
        ConfigChange("config.ExposedPorts", ["80/tcp"], ["443/tcp", "80/tcp"]),
        ConfigChange("config.User", "root", "app"),
        ConfigChange("config.WorkingDir", "/", "/app"),
        ConfigChange("config.Env.A", "1", "2"),
        ConfigChange("config.Env.B", None, "3"),
        ConfigChange("config.Labels.v", "1", None),
    ]


def test_equal_configs_and_top_level_fields() -> None:
    assert compare_configs(config(), config()) == []
    later = ImageConfig(created="2025-01-01T00:00:00Z", architecture="arm64")
    assert [c.field for c in compare_configs(config(), later)] == ["architecture", "created"]
