"""The static contract of a backend class, one rule set for the loader (which refuses a class that
breaks it, with this message) and the conformance kit (which raises ``AssertionError`` with it)."""

from __future__ import annotations

import re

from stylus_ext.sdk.backends import CatalogSource, Refiner
from stylus_ext.sdk.options import Option

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
ENV_PREFIX_RE = re.compile(r"[A-Z][A-Z0-9_]*")
SOURCE_KINDS = ("files", "cards")


def class_problem(cls: object, base: type) -> str:
    """What is wrong with backend class ``cls`` as a ``base`` subclass, or "" when nothing is."""
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return f"not an sdk.{base.__name__} subclass"
    if not isinstance(cls.name, str) or not NAME_RE.match(cls.name):
        return f"name {cls.name!r} must be lowercase letters, digits, '-', '_' or '.'"
    names = [getattr(o, "name", o) for o in cls.options]
    if len(names) != len(set(names)):
        return f"duplicate option names in {names}"
    for opt in cls.options:
        problem = _option_problem(opt)
        if problem:
            return problem
    if cls.options and not cls.env_prefix:
        return "a backend with options needs an env_prefix (STYLUS_<PREFIX>_<OPTION>)"
    if cls.env_prefix and not (isinstance(cls.env_prefix, str) and ENV_PREFIX_RE.fullmatch(cls.env_prefix)):
        return f"env_prefix {cls.env_prefix!r} must be UPPER_CASE"
    if issubclass(cls, Refiner) and not (isinstance(cls.version, str) and cls.version):
        return f"version {cls.version!r} must be a non-empty string (bump it when the output changes)"
    if issubclass(cls, CatalogSource) and cls.kind not in SOURCE_KINDS:
        return f"kind must be one of {list(SOURCE_KINDS)}, got {cls.kind!r}"
    return ""


def _option_problem(opt: object) -> str:
    if not isinstance(opt, Option):
        return f"options must be sdk.Option, got {opt!r}"
    if not opt.help:
        return f"option {opt.name!r} needs a help text"
    try:
        ok = opt.default is None or opt.parse(opt.default) == opt.default
    except ValueError:
        ok = False
    if not ok:
        return f"option {opt.name!r}: default {opt.default!r} is not a {opt.type.__name__}"
    if opt.secret and opt.default:
        return f"secret option {opt.name!r} must not have a default value"
    return ""
