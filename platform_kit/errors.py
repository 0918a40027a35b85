"""The one error tree of platform-kit.

Every error the kit raises on purpose derives from :class:`PlatformKitError`. Its message is one
line that says what went wrong and what to do; the CLI prints it and exits with ``exit_code``.
Errors from libraries (mysql-connector, mlflow, docker, gspread, PyGithub) are translated at the
boundary of the module that talks to them, with ``raise ... from exc``.

    PlatformKitError
    ├── UsageError                  bad flags or arguments                      (exit 2)
    ├── ConfigError                 platform.yaml is malformed                  (exit 2)
    ├── ValidationError             sheet rows fail validation (lists problems) (exit 2)
    ├── SourceError                 a sheet source cannot be read
    ├── StoreError                  Dolt refused an operation
    │   ├── RefNotFoundError                                                    (exit 2)
    │   ├── AccessDeniedError       Dolt refused the user's login or rights
    │   ├── MergeConflictError
    │   └── RemoteError             a Dolt remote refused a clone, fetch, pull or push
    │       └── PushRejectedError   the push is not a fast-forward of the remote branch
    ├── ServiceError                a server is down or answers badly (after retries) (exit 3)
    ├── TrackingError               MLflow refused an operation
    ├── TrainingError               one or more models failed to train
    ├── ReleaseError                building, pushing or recording a release failed
    │   └── ImageNotFoundError                                                  (exit 2)
    └── GitHubError                 the GitHub API refused a call

Unmarked errors exit 1. Any other exception is a bug: the CLI prints one redacted line and exits
70 (see :mod:`platform_kit.cli`).
"""

from __future__ import annotations

from collections.abc import Sequence


class PlatformKitError(Exception):
    """Base of every error the kit raises on purpose; ``str(err)`` is one actionable line."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(PlatformKitError):
    exit_code = 2


class ConfigError(PlatformKitError):
    """platform.yaml is malformed; the message names the file, key path and line."""

    exit_code = 2


class ValidationError(PlatformKitError):
    """Input rows failed validation. ``problems`` holds every problem, one line each."""

    exit_code = 2

    def __init__(self, message: str, problems: Sequence[str] = (), *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = list(problems)

    def __str__(self) -> str:
        if len(self.problems) == 1:  # one line: the problem names sheet, row and column itself
            only = self.problems[0]
            return f"{only} ({self.hint})" if self.hint else only
        head = super().__str__()
        if not self.problems:
            return head
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class SourceError(PlatformKitError):
    """A sheet source (file or Google spreadsheet) cannot be read."""


class StoreError(PlatformKitError):
    """The data store (Dolt) refused an operation."""


class RefNotFoundError(StoreError):
    exit_code = 2


class AccessDeniedError(StoreError):
    """Dolt refused the user's login (wrong DOLT_USER or DOLT_PASSWORD) or its rights."""


class MergeConflictError(StoreError):
    """A merge conflicted; ``conflicts`` maps table -> conflicting primary keys."""

    def __init__(self, message: str, conflicts: dict[str, list[str]], *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.conflicts = conflicts


class RemoteError(StoreError):
    """A Dolt remote (DoltHub, DoltLab, a sql-server's remotesapi) refused an operation."""


class PushRejectedError(RemoteError):
    """The remote branch has commits the local one lacks: a push would lose them."""


class ServiceError(PlatformKitError):
    """A server (Dolt, MLflow, Docker, a registry) is unreachable or failing, after retries."""

    exit_code = 3


class TrackingError(PlatformKitError):
    """MLflow refused an operation; ``code`` is MLflow's error code (``RESOURCE_ALREADY_EXISTS``...)
    where it gave one."""

    def __init__(self, message: str, *, hint: str | None = None, code: str = "") -> None:
        super().__init__(message, hint=hint)
        self.code = code


class TrainingError(PlatformKitError):
    """One or more models failed to train."""


class ReleaseError(PlatformKitError):
    """Building, pushing or recording a release failed."""


class ImageNotFoundError(ReleaseError):
    exit_code = 2


class GitHubError(PlatformKitError):
    """The GitHub API refused a call."""
