"""Flags from settings models: every field becomes ``--field-name``; errors are one line."""

from __future__ import annotations

import argparse
import sys
import types
import typing
from collections.abc import Callable, Set
from typing import Any, NoReturn, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from broker.errors import BrokerError

S = TypeVar("S", bound=BaseSettings)


class CliError(Exception):
    """A bad flag or setting: shown as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a pointer to --help), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def _is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return bool in typing.get_args(annotation)
    return False


def _choices(annotation: Any) -> list[str] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Literal:
            return [str(a) for a in typing.get_args(arg)]
    return None


def add_settings_arguments(
    parser: argparse.ArgumentParser,
    settings_cls: type[BaseSettings],
    *,
    skip: Set[str] = frozenset(),
) -> None:
    """One flag per settings field; unset flags fall back to the environment, then the default."""
    for name, field in settings_cls.model_fields.items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        help_text = (field.description or "").replace("%", "%%")
        env = "AMQP_URL" if name == "amqp_url" else f"FEDMQ_{name.upper()}"
        help_text = f"{help_text} [env {env}]"
        if _is_bool(field.annotation):
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
            continue
        choices = _choices(field.annotation)
        parser.add_argument(
            flag,
            dest=name,
            default=argparse.SUPPRESS,
            choices=choices,
            help=help_text,
            metavar=name.upper() if not choices else None,
        )


def settings_from_args(settings_cls: type[S], args: argparse.Namespace, **overrides: Any) -> S:
    """Flags override the environment; a validation failure becomes a one-line ``CliError``."""
    values = {k: v for k, v in vars(args).items() if k in settings_cls.model_fields}
    values.update(overrides)
    try:
        return settings_cls(**values)
    except ValidationError as exc:
        raise CliError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        where = f"--{field.replace('_', '-')}" if field else "settings"
        value = (
            f" (got {err['input']!r})" if field and not isinstance(err.get("input"), dict) else ""
        )
        parts.append(f"{where}: {err['msg']}{value}")
    return "; ".join(parts)


def run_command(
    runner: Callable[[argparse.Namespace], int], args: argparse.Namespace, *, prog: str
) -> int:
    """Run a command; configuration and broker problems are one line on stderr."""
    try:
        return runner(args)
    except CliError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return 2
    except BrokerError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return 1
    except ValueError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return 2


def service_main(
    name: str, setup: Callable[[argparse.ArgumentParser], Callable[[argparse.Namespace], int]]
) -> NoReturn:
    """``python -m aggregator`` / ``python -m worker``: the same as ``fedmq <name>``."""
    parser = OneLineParser(prog=f"python -m {name}", description=f"fedmq {name}")
    runner = setup(parser)
    raise SystemExit(run_command(runner, parser.parse_args(), prog=f"python -m {name}"))
