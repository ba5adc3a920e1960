"""The `layerbuild` command: parse options, call one function, render the result.

`group.py` holds the click group, which imports a command's module only when that command runs
(`build` must fork its context walkers before the builder is imported, and no command should pay
for importing the others); `failure.py` is the one place that turns an error into an exit status
(`errors.ExitCode`). One module per command group (`build`, `cache`, `fsck`, `images`,
`registry`, `run`): each imports `context.Context` and the shared parsers of `options.py`, never
another command's module (tests/unit/cli/test_imports.py checks it).
"""

from layerbuild.cli.group import main

__all__ = ["main"]
