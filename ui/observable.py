"""Observable properties for Qt view-models (the krita-ai-diffusion pattern).

A class attribute `name = observable(default)` on a `QObject` subclass that also declares
`name_changed = Signal(object)` becomes a property that emits `name_changed(new_value)` whenever it is set to a
different value. Widgets bind to these signals; nothing else is needed to keep them in sync.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject


def _same(a: Any, b: Any) -> bool:
    """Equality that never asks numpy arrays (or dicts holding them) for an ambiguous truth value."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(type(a) is type(b) and a == b)
    except (TypeError, ValueError):
        return False


class observable:  # noqa: N801 - used like `property`
    """A view-model property that emits `<name>_changed(value)` when its value changes."""

    def __init__(self, default: Any = None, coerce: Callable[[Any], Any] | None = None) -> None:
        self.default = default
        self.coerce = coerce
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            value = copy.copy(self.default)  # a fresh list / dict per instance
            obj.__dict__[self.name] = value
            return value

    def __set__(self, obj: Any, value: Any) -> None:
        if self.coerce is not None and value is not None:
            value = self.coerce(value)
        if _same(self.__get__(obj), value):
            return
        obj.__dict__[self.name] = value
        getattr(obj, f"{self.name}_changed").emit(value)


class ObservableObject(QObject):
    """Base for view-models: checks at class creation that every observable has its `_changed` signal."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, attr in vars(cls).items():
            if isinstance(attr, observable) and not hasattr(cls, f"{name}_changed"):
                raise TypeError(f"{cls.__name__}.{name} is observable but has no {name}_changed signal")

    @classmethod
    def observables(cls) -> list[str]:
        """Names of every observable property, base classes included."""
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            names += [n for n, a in vars(klass).items() if isinstance(a, observable) and n not in names]
        return names
