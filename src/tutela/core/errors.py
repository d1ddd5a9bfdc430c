"""One root error for tutela; each subclass's docstring is its default message.

Messages say what is wrong and how to fix it: the CLI prints them as one line.
"""

from __future__ import annotations


class TutelaError(Exception):
    """tutela failed."""

    def __init__(self, message: str | None = None, *, hint: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.hint = hint
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(TutelaError):
    """The configuration is invalid."""


class MissingExtra(TutelaError):
    """An optional dependency is not installed."""


class ModelUnavailable(TutelaError):
    """A model file is missing or does not match its pinned sha256."""


class ParseError(TutelaError):
    """Input could not be parsed."""


class ResourceLimitExceeded(TutelaError):
    """Input exceeded a size, depth, time or decompression limit."""


class StoreError(TutelaError):
    """The event store cannot be used."""


class ServiceError(TutelaError):
    """A platform service could not be started or reached."""
