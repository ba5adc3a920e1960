"""The cases of BuildKit's own check tests (moby/buildkit frontend/dockerfile/
dockerfile_check_test.go, formerly dockerfile_lint_test.go): Dockerfile -> the warnings BuildKit
reports for a build of it (rule, line, message), with BuildKit's message texts."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from layerbuild.checks.run import run_checks
from layerbuild.dockerfile.parser import parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.image.descriptor import Platform
from layerbuild.plan.graph import plan

# the environment BuildKit finds in the base images its tests use
IMAGES: dict[str, dict[str, str]] = {
    "alpine": {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
    "busybox": {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
}

Expected = list[tuple[str, int, str]]

CASES: list[tuple[str, str, dict[str, str], Expected]] = [
    ("StageNameCasing+FromAsCasing", """
# warning: stage name should be lowercase
#
FROM scratch AS BadStageName

# warning: 'as' should match 'FROM' cmd casing.
#
FROM scratch as base2

FROM scratch AS base3
""", {}, [
        ("StageNameCasing", 4, "Stage name 'BadStageName' should be lowercase"),
        ("FromAsCasing", 8, "'as' and 'FROM' keywords' casing do not match"),
    ]),
    ("FromAsCasing-lower", """
# warning: 'AS' should match 'from' cmd casing.
#
from scratch AS base

from scratch as base2
""", {}, [("FromAsCasing", 4, "'AS' and 'from' keywords' casing do not match")]),
    ("NoEmptyContinuation", """
FROM scratch
# warning: empty continuation line
COPY Dockerfile \\

.
COPY Dockerfile \\
.
""", {}, [("NoEmptyContinuation", 6, "Empty continuation line")]),
    ("ConsistentInstructionCasing-From", """
# warning: 'FROM' should be either lowercased or uppercased
#
From scratch as base
FROM scratch AS base2
""", {}, [("ConsistentInstructionCasing", 4,
           "Command 'From' should match the case of the command majority (uppercase)")]),
    ("ConsistentInstructionCasing-copy", """
FROM scratch
# warning: 'copy' should match command majority's casing (uppercase)
copy Dockerfile /foo
COPY Dockerfile /bar
""", {}, [("ConsistentInstructionCasing", 4,
           "Command 'copy' should match the case of the command majority (uppercase)")]),
    ("ConsistentInstructionCasing-frOM", """
# warning: 'frOM' should be either lowercased or uppercased
#
frOM scratch as base
from scratch as base2
""", {}, [("ConsistentInstructionCasing", 4,
           "Command 'frOM' should match the case of the command majority (lowercase)")]),
    ("ConsistentInstructionCasing-COPY", """
from scratch
# warning: 'COPY' should match command majority's casing (lowercase)
COPY Dockerfile /foo
copy Dockerfile /bar
""", {}, [("ConsistentInstructionCasing", 4,
           "Command 'COPY' should match the case of the command majority (lowercase)")]),
    ("ConsistentInstructionCasing-from", """
# warning: 'from' should match command majority's casing (uppercase)
#
from scratch
COPY Dockerfile /foo
COPY Dockerfile /bar
COPY Dockerfile /baz
""", {}, [("ConsistentInstructionCasing", 4,
           "Command 'from' should match the case of the command majority (uppercase)")]),
    ("ConsistentInstructionCasing-FROM", """
# warning: 'FROM' should match command majority's casing (lowercase)
#
FROM scratch
copy Dockerfile /foo
copy Dockerfile /bar
copy Dockerfile /baz
""", {}, [("ConsistentInstructionCasing", 4,
           "Command 'FROM' should match the case of the command majority (lowercase)")]),
    ("ConsistentInstructionCasing-none-lower", """
from scratch
copy Dockerfile /foo
copy Dockerfile /bar
""", {}, []),
    ("ConsistentInstructionCasing-none-upper", """
FROM scratch
COPY Dockerfile /foo
COPY Dockerfile /bar
""", {}, []),
    ("ConsistentInstructionCasing-heredoc", """
FROM alpine
RUN <<'EOT'
env
EOT
""", {}, []),
    ("ReservedStageName", """
FROM scratch AS scratch
FROM scratch AS context
""", {}, [
        ("ReservedStageName", 2,
         'Stage name should not use the same name as reserved stage "scratch"'),
        ("ReservedStageName", 3,
         'Stage name should not use the same name as reserved stage "context"'),
    ]),
    ("ReservedStageName-none", """
FROM scratch
FROM scratch AS a
""", {}, []),
    ("DuplicateStageName-none", """
FROM scratch AS b1
FROM scratch AS b2
""", {}, []),
    ("DuplicateStageName", """
FROM scratch AS b
FROM scratch AS b
""", {}, [("DuplicateStageName", 3, 'Duplicate stage name "b", stage names should be unique')]),
    ("DuplicateStageName-case", """
FROM scratch AS base
FROM scratch AS other
FROM scratch AS Base
""", {}, [("DuplicateStageName", 4, 'Duplicate stage name "base", stage names should be unique'),
          ("StageNameCasing", 4, "Stage name 'Base' should be lowercase")]),
    ("InvalidBaseImagePlatform", """
FROM armonly:1 AS a
FROM alpine
COPY --from=a /x /x
""", {}, [("InvalidBaseImagePlatform", 2, 'Base image armonly:1 was pulled with platform '
           '"linux/arm64", expected "linux/amd64" for current build')]),
    ("InvalidBaseImagePlatform-flag", """
ARG BUILDPLATFORM
FROM --platform=linux/arm64 armonly:1 AS build_arm64
FROM --platform=$BUILDPLATFORM alpine AS tools
FROM --platform=$BUILDPLATFORM armonly:1 AS wrong
FROM alpine
COPY --from=build_arm64 /x /x
COPY --from=tools /y /y
COPY --from=wrong /z /z
""", {}, [("InvalidBaseImagePlatform", 5, 'Base image armonly:1 was pulled with platform '
           '"linux/arm64", expected "linux/amd64" for current build')]),
    ("InvalidBaseImagePlatform-unreached", """
FROM armonly:1 AS unused
FROM alpine
""", {}, []),
    ("JSONArgsRecommended-CMD", """
FROM scratch
CMD mycommand
""", {}, [("JSONArgsRecommended", 3,
           "JSON arguments recommended for CMD to prevent unintended behavior related to OS "
           "signals")]),
    ("JSONArgsRecommended-ENTRYPOINT", """
FROM scratch
ENTRYPOINT mycommand
""", {}, [("JSONArgsRecommended", 3,
           "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related "
           "to OS signals")]),
    ("JSONArgsRecommended-shell-CMD", """
FROM scratch
SHELL ["/usr/bin/customshell"]
CMD mycommand
""", {}, []),
    ("JSONArgsRecommended-shell-ENTRYPOINT", """
FROM scratch
SHELL ["/usr/bin/customshell"]
ENTRYPOINT mycommand
""", {}, []),
    ("JSONArgsRecommended-inherited-CMD", """
FROM scratch AS base
SHELL ["/usr/bin/customshell"]

FROM base
CMD mycommand
""", {}, []),
    ("JSONArgsRecommended-inherited-ENTRYPOINT", """
FROM scratch AS base
SHELL ["/usr/bin/customshell"]

FROM base
ENTRYPOINT mycommand
""", {}, []),
    ("MaintainerDeprecated", """
FROM scratch
MAINTAINER me@example.org
""", {}, [("MaintainerDeprecated", 3,
           "Maintainer instruction is deprecated in favor of using label")]),
    ("MaintainerDeprecated-label", """
FROM scratch
LABEL org.opencontainers.image.authors="me@example.org"
""", {}, []),
    ("skip-comment-JSONArgsRecommended-CMD", """
FROM scratch
# check=skip=JSONArgsRecommended
CMD mycommand
""", {}, []),
    ("skip-comment-JSONArgsRecommended-ENTRYPOINT", """
FROM scratch
# check=skip=JSONArgsRecommended
ENTRYPOINT mycommand
""", {}, []),
    ("skip-comment-MaintainerDeprecated", """
FROM scratch
# check=skip=MaintainerDeprecated
MAINTAINER me@example.org
""", {}, []),
    ("UndefinedArgInFrom-declared", """
ARG base=scratch
FROM $base
COPY Dockerfile .
""", {}, []),
    ("UndefinedArgInFrom-BUILDPLATFORM-declared", """
ARG BUILDPLATFORM=linux/amd64
FROM --platform=$BUILDPLATFORM scratch
COPY Dockerfile .
""", {}, []),
    ("UndefinedArgInFrom-BUILDPLATFORM", """
FROM --platform=$BUILDPLATFORM scratch
COPY Dockerfile .
""", {}, []),
    ("UndefinedArgInFrom-unset", """
ARG DEBUG
FROM scratch${DEBUG}
COPY Dockerfile .
""", {}, []),
    ("UndefinedArgInFrom-default", """
ARG DEBUG
FROM scra${DEBUG:-tch}
COPY Dockerfile .
""", {}, []),
    ("UndefinedArgInFrom-empty", """
ARG DEBUG=""
FROM scratch${DEBUG-@bogus}
COPY Dockerfile .
""", {}, []),
    ("UndefinedArgInFrom-typo", """
FROM --platform=$BULIDPLATFORM scratch
COPY Dockerfile .
""", {}, [("UndefinedArgInFrom", 2,
           "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)")]),
    ("UndefinedArgInFrom-MYARCH", """
ARG MY_OS=linux
ARG MY_ARCH=amd64
FROM --platform=linux/${MYARCH} busybox
COPY Dockerfile .
""", {}, [("UndefinedArgInFrom", 4,
           "FROM argument 'MYARCH' is not declared (did you mean MY_ARCH?)")]),
    ("UndefinedArgInFrom-version", """
ARG tag=latest
FROM busybox:${tag}${version} AS b
COPY Dockerfile .
""", {}, [("UndefinedArgInFrom", 3, "FROM argument 'version' is not declared")]),
    ("WorkdirRelativePath", """
FROM scratch
WORKDIR app/
""", {}, [("WorkdirRelativePath", 3,
           'Relative workdir "app/" can have unexpected results if the base image changes')]),
    ("WorkdirRelativePath-inherited", """
FROM scratch AS a
WORKDIR /app

FROM a AS b
WORKDIR subdir/
""", {}, []),
    ("WorkdirRelativePath-skip", """
FROM scratch
# check=skip=WorkdirRelativePath
WORKDIR app/
""", {}, []),
    ("UndefinedVar-arg", """
FROM scratch
ARG foo
COPY Dockerfile${foo} .
""", {}, []),
    ("UndefinedVar-inherited", """
FROM alpine AS base
ARG foo=Dockerfile

FROM base
COPY $foo .
""", {}, []),
    ("UndefinedVar-run", """
FROM alpine
RUN echo $PATH
""", {}, []),
    ("UndefinedVar-before-arg", """
FROM alpine
COPY $foo .
ARG foo=bar
RUN echo $foo
""", {}, [("UndefinedVar", 3, "Usage of undefined variable '$foo'")]),
    ("UndefinedVar-suggest", """
FROM alpine
ARG DIR_BINARIES=binaries/
ARG DIR_ASSETS=assets/
ARG DIR_CONFIG=config/
COPY $DIR_ASSET .
""", {}, [("UndefinedVar", 6,
           "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)")]),
    ("UndefinedVar-PATH", """
FROM alpine
ENV PATH=$PAHT:/tmp/bin
""", {}, [("UndefinedVar", 3, "Usage of undefined variable '$PAHT' (did you mean $PATH?)")]),
    ("UndefinedVar-unreachable", """
FROM scratch AS first
COPY $foo .

FROM scratch AS second
COPY $bar .
""", {}, [("UndefinedVar", 6, "Usage of undefined variable '$bar'")]),
    ("LegacyKeyValueFormat", """
FROM scratch
ENV testkey value
LABEL key value
""", {}, [
        ("LegacyKeyValueFormat", 3,
         '"ENV key=value" should be used instead of legacy "ENV key value" format'),
        ("LegacyKeyValueFormat", 4,
         '"LABEL key=value" should be used instead of legacy "LABEL key value" format'),
    ]),
    ("LegacyKeyValueFormat-none", """
FROM scratch
ENV testkey=value
LABEL key=value
""", {}, []),
    ("LegacyKeyValueFormat-unreachable", """
FROM scratch AS a

FROM a AS b
ENV testkey value
LABEL key value

FROM a AS c
""", {}, []),
    ("LegacyKeyValueFormat-skip", """
FROM scratch
# check=skip=LegacyKeyValueFormat
ENV testkey value
# check=skip=LegacyKeyValueFormat
LABEL key value
""", {}, []),
    ("RedundantTargetPlatform", """
FROM --platform=$TARGETPLATFORM scratch
""", {}, [("RedundantTargetPlatform", 2,
           "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the "
           "default behavior")]),
    ("RedundantTargetPlatform-braces", """
FROM --platform=${TARGETPLATFORM} scratch
""", {}, [("RedundantTargetPlatform", 2,
           "Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the "
           "default behavior")]),
    ("RedundantTargetPlatform-skip", """
# check=skip=RedundantTargetPlatform
FROM --platform=$TARGETPLATFORM scratch
""", {}, []),
    ("InvalidDefaultArgInFrom-VERSION", """
ARG VERSION
FROM busybox:$VERSION
""", {"VERSION": "latest"}, [("InvalidDefaultArgInFrom", 3,
                               "Default value for ARG busybox:$VERSION results in empty or "
                               "invalid base image name")]),
    ("InvalidDefaultArgInFrom-IMAGE", """
ARG IMAGE
FROM $IMAGE
""", {"IMAGE": "busybox:latest"}, [("InvalidDefaultArgInFrom", 3,
                                     "Default value for ARG $IMAGE results in empty or invalid "
                                     "base image name")]),
    ("InvalidDefaultArgInFrom-SFX", """
ARG SFX="box:"
FROM busy${SFX}
""", {"SFX": "box:latest"}, [("InvalidDefaultArgInFrom", 3,
                               "Default value for ARG busy${SFX} results in empty or invalid "
                               "base image name")]),
    ("InvalidDefaultArgInFrom-none", """
ARG VERSION="latest"
FROM busybox:${VERSION}
""", {"VERSION": "latest"}, []),
    ("InvalidDefaultArgInFrom-empty-default", """
ARG BUSYBOX_VARIANT=""
FROM busybox:stable${BUSYBOX_VARIANT}
""", {"BUSYBOX_VARIANT": "-musl"}, []),
    ("InvalidDefaultArgInFrom-no-default", """
\tARG BUSYBOX_VARIANT
\tFROM busybox:stable${BUSYBOX_VARIANT}
\t""", {"BUSYBOX_VARIANT": "-musl"}, []),
    ("FromPlatformFlagConstDisallowed", """
FROM --platform=linux/amd64 scratch
""", {}, [("FromPlatformFlagConstDisallowed", 2,
           'FROM --platform flag should not use constant value "linux/amd64"')]),
    ("FromPlatformFlagConstDisallowed-named-arch", """
FROM --platform=linux/amd64 scratch AS my_amd64_stage
""", {}, []),
    ("FromPlatformFlagConstDisallowed-named-os", """
FROM --platform=linux/amd64 scratch AS linux
""", {}, []),
    ("ExposeProtoCasing", """
FROM scratch
EXPOSE 80/TcP 8080/TCP 8080/udp
""", {}, [
        ("ExposeProtoCasing", 3, "Defined protocol '80/TcP' in EXPOSE instruction should be "
         "lowercase"),
        ("ExposeProtoCasing", 3, "Defined protocol '8080/TCP' in EXPOSE instruction should be "
         "lowercase"),
    ]),
    ("ExposeInvalidFormat", """
FROM scratch
EXPOSE 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000
""", {}, [
        ("ExposeInvalidFormat", 3, "EXPOSE instruction should not define an IP address or "
         "host-port mapping, found '127.0.0.1:80:80'"),
        ("ExposeInvalidFormat", 3, "EXPOSE instruction should not define an IP address or "
         "host-port mapping, found '[::1]:8080:8080'"),
        ("ExposeInvalidFormat", 3, "EXPOSE instruction should not define an IP address or "
         "host-port mapping, found '5000:5000'"),
    ]),
    ("MultipleInstructionsDisallowed", """
FROM scratch
ENTRYPOINT ["/myapp"]
ENTRYPOINT ["/myotherapp"]
CMD ["/myapp"]
CMD ["/myotherapp"]
HEALTHCHECK CMD ["/myapp"]
HEALTHCHECK CMD ["/myotherapp"]
""", {}, [
        ("MultipleInstructionsDisallowed", 3, "Multiple ENTRYPOINT instructions should not be "
         "used in the same stage because only the last one will be used"),
        ("MultipleInstructionsDisallowed", 5, "Multiple CMD instructions should not be used in "
         "the same stage because only the last one will be used"),
        ("MultipleInstructionsDisallowed", 7, "Multiple HEALTHCHECK instructions should not be "
         "used in the same stage because only the last one will be used"),
    ]),
    ("MultipleInstructionsDisallowed-apart", """
FROM scratch
ENTRYPOINT ["/myapp"]
CMD ["/myapp"]
HEALTHCHECK CMD ["/myapp"]
COPY <<EOF /a.txt
Hello, World!
EOF
ENTRYPOINT ["/myotherapp"]
CMD ["/myotherapp"]
HEALTHCHECK CMD ["/myotherapp"]
""", {}, [
        ("MultipleInstructionsDisallowed", 3, "Multiple ENTRYPOINT instructions should not be "
         "used in the same stage because only the last one will be used"),
        ("MultipleInstructionsDisallowed", 4, "Multiple CMD instructions should not be used in "
         "the same stage because only the last one will be used"),
        ("MultipleInstructionsDisallowed", 5, "Multiple HEALTHCHECK instructions should not be "
         "used in the same stage because only the last one will be used"),
    ]),
    ("MultipleInstructionsDisallowed-stages", """
FROM scratch AS a
ENTRYPOINT ["/myapp"]
CMD ["/myapp"]
HEALTHCHECK CMD ["/myapp"]

FROM a AS b
ENTRYPOINT ["/myotherapp"]
CMD ["/myotherapp"]
HEALTHCHECK CMD ["/myotherapp"]
""", {}, []),
    ("SecretsUsedInArgOrEnv", """# check=skip=InvalidDefinitionDescription

FROM scratch
ARG SECRET_PASSPHRASE
ENV SUPER_Secret=foo
ENV password=bar secret=baz
ARG super_duper_secret_token=foo auth=bar
ENV apikey=bar sunflower=foo
ENV git_key=
ENV PUBLIC_KEY=
ARG public_token
ARG SECRET_PASSPHRASE_FILE
ENV password_file=bar secret_File=baz
ARG AUTH_MODULE_VERSION
# check=skip=SecretsUsedInArgOrEnv // allow secret in environment
ENV password=bar
# check=skip=SecretsUsedInArgOrEnv // allow secret in arg
ARG password
# check=skip=all // is local to only this instruction
ENV alternate_password=bar
# check=skip=all // is local to only this instruction
ARG alternate_password
""", {}, [
        ("SecretsUsedInArgOrEnv", 4,
         'Do not use ARG or ENV instructions for sensitive data (ARG "SECRET_PASSPHRASE")'),
        ("SecretsUsedInArgOrEnv", 5,
         'Do not use ARG or ENV instructions for sensitive data (ENV "SUPER_Secret")'),
        ("SecretsUsedInArgOrEnv", 6,
         'Do not use ARG or ENV instructions for sensitive data (ENV "password")'),
        ("SecretsUsedInArgOrEnv", 6,
         'Do not use ARG or ENV instructions for sensitive data (ENV "secret")'),
        ("SecretsUsedInArgOrEnv", 7,
         'Do not use ARG or ENV instructions for sensitive data (ARG "auth")'),
        ("SecretsUsedInArgOrEnv", 7,
         'Do not use ARG or ENV instructions for sensitive data (ARG "super_duper_secret_token")'),
        ("SecretsUsedInArgOrEnv", 8,
         'Do not use ARG or ENV instructions for sensitive data (ENV "apikey")'),
        ("SecretsUsedInArgOrEnv", 9,
         'Do not use ARG or ENV instructions for sensitive data (ENV "git_key")'),
    ]),
]

CHECK_OPTION_DOCKERFILE = "FROM scratch as base\ncopy Dockerfile .\n"
FROM_AS = ("FromAsCasing", 2, "'as' and 'FROM' keywords' casing do not match")
# testRuleCheckOption: (directive, BUILDKIT_DOCKERFILE_CHECK or None, warnings)
CHECK_OPTIONS: list[tuple[str, str | None, Expected]] = [
    ("skip=all", None, []),
    ("skip=all;error=true", None, []),
    ("skip=ConsistentInstructionCasing,FromAsCasing", None, []),
    ("skip=ConsistentInstructionCasing,FromAsCasing;error=true", None, []),
    ("skip=ConsistentInstructionCasing", None, [FROM_AS]),
    ("skip=ConsistentInstructionCasing;error=true", None, [FROM_AS]),
    ("skip=all", "skip=ConsistentInstructionCasing;error=true", [FROM_AS]),
    ("error=true", "skip=all", []),
]
PLATFORM = Platform(os="linux", architecture="amd64")


def _image_env(image: str) -> Mapping[str, str] | None:
    return IMAGES.get(image.partition(":")[0])


def _image_platform(image: str) -> Platform | None:
    name = image.partition(":")[0]
    if name == "armonly":
        return Platform(os="linux", architecture="arm64", variant="v8")
    return Platform(os="linux", architecture="amd64") if name in IMAGES else None


def _check(text: str, build_args: Mapping[str, str]) -> Expected:
    dockerfile = parse_dockerfile(DockerfileSource("Dockerfile", text), unique_stage_names=False)
    # the stages a build of the last one reaches, as BuildKit's tests build it
    graph = plan(dockerfile, target=None, build_args=build_args, named_contexts=(),
                 platform=PLATFORM, build_platform=PLATFORM)
    warnings = run_checks(dockerfile, build_args, platform=PLATFORM, build_platform=PLATFORM,
                          reachable={s.index for s in graph.stages}, image_env=_image_env,
                          image_platform=_image_platform)
    return [(w.rule, w.line, w.message) for w in warnings]


@pytest.mark.parametrize(("text", "build_args", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_buildkit_case(text: str, build_args: dict[str, str], expected: Expected) -> None:
    assert sorted(_check(text, build_args)) == sorted(expected)


@pytest.mark.parametrize(("directive", "build_arg", "expected"), CHECK_OPTIONS)
def test_check_options(directive: str, build_arg: str | None, expected: Expected) -> None:
    args = {"BUILDKIT_DOCKERFILE_CHECK": build_arg} if build_arg is not None else {}
    assert _check(f"#check={directive}\n{CHECK_OPTION_DOCKERFILE}", args) == expected
