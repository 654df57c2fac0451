"""The training schemes by name: each class registers itself with :func:`register_scheme`, which checks
how it describes itself (so that a new scheme cannot be half-described), and is built from its
parameter dataclass by :func:`make_scheme`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from ..errors import ConfigError
from ..models import HEADS
from ..settings import check_fields
from .base import SchemeParameters, TrainingScheme

LABEL_KINDS = ("weak", "strong", "weak+strong")
ATTENTION_SUPERVISION = ("none", "strong", "self", "strong+self")

#: the fields every scheme takes (:class:`SchemeParameters`'s); ``TrainingScheme.parameters`` are the others
COMMON_PARAMETERS = tuple(f.name for f in dataclasses.fields(SchemeParameters))

#: schemes by name, in the order they registered (``weaktag schemes`` lists them so)
SCHEMES: dict[str, type[TrainingScheme]] = {}

S = TypeVar("S", bound=type[TrainingScheme])


def register_scheme(cls: S) -> S:
    """Class decorator: add a scheme to :data:`SCHEMES` after checking its declarations (TypeError, a bug)."""
    problems = []
    if not cls.name or cls.name in SCHEMES:
        problems.append(f"name {cls.name!r} is empty or taken")
    if cls.labels not in LABEL_KINDS:
        problems.append(f"labels {cls.labels!r} not in {LABEL_KINDS}")
    if cls.needs_strong and "strong" not in cls.labels:
        problems.append("needs strong labels but does not declare them")
    if cls.uses_attention != (cls.attention_supervision in ATTENTION_SUPERVISION):
        problems.append(f"attention_supervision {cls.attention_supervision!r} does not fit "
                        f"uses_attention={cls.uses_attention}")
    head = HEADS.get(cls.head_kind())
    if head is None or head.has_attention != cls.uses_attention:
        problems.append(f"head {cls.head_kind()!r} is not one of {tuple(HEADS)} or does not fit "
                        f"uses_attention={cls.uses_attention}")
    if not (dataclasses.is_dataclass(cls.Parameters) and issubclass(cls.Parameters, SchemeParameters)):
        problems.append(f"Parameters {cls.Parameters!r} is not a dataclass deriving from SchemeParameters")
    if problems:
        raise TypeError(f"scheme class {cls.__name__}: " + "; ".join(problems))
    cls.parameters = tuple(f.name for f in dataclasses.fields(cls.Parameters) if f.name not in COMMON_PARAMETERS)
    SCHEMES[cls.name] = cls
    return cls


def scheme_class(name: str) -> type[TrainingScheme]:
    try:
        return SCHEMES[name]
    except KeyError:
        raise ConfigError(f"unknown scheme {name!r}; choose one of: {', '.join(SCHEMES)}") from None


def unknown_parameter(name: str, key: str) -> str:
    """``scheme.<key>: ...`` for a key scheme ``name`` does not take, naming the schemes that do."""
    takers = [s for s, cls in SCHEMES.items() if key in cls.parameters]
    takes = (*SCHEMES[name].parameters, *COMMON_PARAMETERS[1:])
    return (f"scheme.{key}: scheme {name!r} does not take {key!r} "
            + (f"(taken by {', '.join(takers)})" if takers else "(no scheme takes it)")
            + f"; {name} takes: {', '.join(takes)}")


def scheme_parameters(name: str, other: SchemeParameters | None = None, **values: Any) -> SchemeParameters:
    """Scheme ``name``'s parameters: its defaults, then the values of ``other`` (another scheme's
    parameters: ``compare`` trains every arm under one config) for the keys ``name`` takes too, then
    ``values``; ConfigError for a key of ``values`` that ``name`` does not take. A value ``other`` holds at
    its own scheme's default is not carried: each scheme keeps its own default there (M&mnet's class
    weights, PSL's teacher weight). Ranges are checked by :func:`make_scheme` (and by config loading)."""
    cls = scheme_class(name).Parameters
    keys = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in keys or key == "name":
            raise ConfigError(unknown_parameter(name, key), key=f"scheme.{key}")
    carried = {}
    if other is not None:
        defaults = {f.name: f.default for f in dataclasses.fields(other)}
        carried = {k: v for k, v in dataclasses.asdict(other).items() if k in keys and v != defaults.get(k)}
    return cls(**{**carried, **values, "name": name})


def make_scheme(name: str, params: SchemeParameters | None = None) -> TrainingScheme:
    """Build scheme ``name`` from its parameters (``scheme_parameters(name, ...)``; None: its defaults);
    ConfigError naming ``scheme.<key>`` and its range for a bad value."""
    cls = scheme_class(name)
    params = scheme_parameters(name) if params is None else params
    if type(params) is not cls.Parameters or params.name != name:
        raise TypeError(f"scheme {name!r} is built from its {cls.Parameters.__name__} (scheme_parameters), "
                        f"not {params!r}")
    check_fields(params, f"scheme {name!r}", "scheme.")
    try:
        params.check()
    except ValueError as exc:
        raise ConfigError(f"scheme {name!r}: {exc}") from None
    return cls(params)
