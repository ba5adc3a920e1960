"""The rules BuildKit checks Dockerfiles against, with its names, descriptions and links
(moby/buildkit frontend/dockerfile/linter/ruleset.go), and the warning a check yields."""

from __future__ import annotations

from dataclasses import dataclass

from layerbuild.dockerfile.source import Span

_DOCS = "https://docs.docker.com/go/dockerfile/rule/"


@dataclass(frozen=True)
class Rule:
    """A build check: its name, what it warns about and where BuildKit documents it."""

    name: str
    description: str
    url: str


@dataclass(frozen=True)
class CheckWarning:
    """One finding: the rule, BuildKit's message for it and the lines it points at."""

    rule: str
    message: str
    span: Span
    url: str
    description: str

    @property
    def line(self) -> int:
        return self.span.start_line

    def short(self) -> str:
        """BuildKit's one-line form: `Rule: message (line N)`."""
        return f"{self.rule}: {self.message} (line {self.line})"


def _rule(name: str, slug: str, description: str) -> Rule:
    return Rule(name, description, _DOCS + slug + "/")


RULES: dict[str, Rule] = {r.name: r for r in (
    _rule("StageNameCasing", "stage-name-casing", "Stage names should be lowercase"),
    _rule("FromAsCasing", "from-as-casing",
          "The 'as' keyword should match the case of the 'from' keyword"),
    _rule("NoEmptyContinuation", "no-empty-continuation",
          "Empty continuation lines will become errors in a future release"),
    _rule("ConsistentInstructionCasing", "consistent-instruction-casing",
          "All commands within the Dockerfile should use the same casing (either upper or lower)"),
    _rule("DuplicateStageName", "duplicate-stage-name", "Stage names should be unique"),
    _rule("ReservedStageName", "reserved-stage-name",
          "Reserved words should not be used as stage names"),
    _rule("JSONArgsRecommended", "json-args-recommended",
          "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related "
          "to OS signals"),
    _rule("MaintainerDeprecated", "maintainer-deprecated",
          "The MAINTAINER instruction is deprecated, use a label instead to define an image "
          "author"),
    _rule("UndefinedArgInFrom", "undefined-arg-in-from", "FROM command must use declared ARGs"),
    _rule("WorkdirRelativePath", "workdir-relative-path",
          "Relative workdir without an absolute workdir declared within the build can have "
          "unexpected results if the base image changes"),
    _rule("UndefinedVar", "undefined-var", "Variables should be defined before their use"),
    _rule("MultipleInstructionsDisallowed", "multiple-instructions-disallowed",
          "Multiple instructions of the same type should not be used in the same stage"),
    _rule("LegacyKeyValueFormat", "legacy-key-value-format",
          "Legacy key/value format with whitespace separator should not be used"),
    _rule("RedundantTargetPlatform", "redundant-target-platform",
          "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the "
          "default behavior"),
    _rule("SecretsUsedInArgOrEnv", "secrets-used-in-arg-or-env",
          "Sensitive data should not be used in the ARG or ENV commands"),
    _rule("InvalidDefaultArgInFrom", "invalid-default-arg-in-from",
          "Default value for global ARG results in an empty or invalid base image name"),
    _rule("FromPlatformFlagConstDisallowed", "from-platform-flag-const-disallowed",
          "FROM --platform flag should not use a constant value"),
    _rule("CopyIgnoredFile", "copy-ignored-file",
          "Attempting to Copy file that is excluded by .dockerignore"),
    _rule("ExposeProtoCasing", "expose-proto-casing",
          "Protocol in EXPOSE instruction should be lowercase"),
    _rule("ExposeInvalidFormat", "expose-invalid-format",
          "IP address and host-port mapping should not be used in EXPOSE instruction. This will "
          "become an error in a future release"),
    _rule("InvalidBaseImagePlatform", "invalid-base-image-platform",
          "Base image platform does not match expected target platform"),
)}


@dataclass(frozen=True)
class Finding:
    """A warning before the check= options filter it: `scope` is the first line of the
    instruction whose `# check=` comment may skip it (None: only the file-wide options)."""

    rule: str
    message: str
    span: Span
    scope: int | None

    def warning(self) -> CheckWarning:
        rule = RULES[self.rule]
        return CheckWarning(self.rule, self.message, self.span, rule.url, rule.description)
