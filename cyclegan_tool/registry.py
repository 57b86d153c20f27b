"""Decorator registries: `@GENERATORS.register("resnet_9blocks")`. CLI choices and GUI menus
list them; nothing is ever found by file name."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Generic, TypeVar

from cyclegan_tool.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of builders with helpful errors for unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._families: list[tuple[re.Pattern, Callable[[re.Match], T], str]] = []

    def register_family(self, pattern: str, example: str) -> Callable:
        """Names matching `pattern` (e.g. `resnet_(\\d+)blocks`) are built by `factory(match)`;
        they are accepted everywhere a name is read but not listed as choices."""

        def deco(factory: Callable[[re.Match], T]) -> Callable[[re.Match], T]:
            self._families.append((re.compile(pattern), factory, example))
            return factory

        return deco

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        if name not in self._items:
            for pattern, factory, _ in self._families:
                if (m := pattern.fullmatch(name)) and (item := factory(m)) is not None:
                    return item
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"unknown {self.kind} '{name}'{hint}; choose from: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
