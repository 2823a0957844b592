"""The public surface: exported names exist, every module declares __all__,
and the exception tree has the documented shape."""

from __future__ import annotations

import ast
import builtins
import enum
import importlib
import inspect
from pathlib import Path

import pytest

import wsmux
from wsmux import errors, model

PACKAGE = Path(wsmux.__file__).parent
ALL_FILES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


PUBLIC_MODULES = sorted(m for m in map(module_name, ALL_FILES) if is_public(m))


def import_or_skip(name: str) -> object:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:  # an optional third-party dependency (e.g. a transport)
        if exc.name is None or exc.name.split(".")[0] == "wsmux":
            raise
        pytest.skip(f"{name} needs {exc.name}, which is not installed")


# --- __all__ ----------------------------------------------------------------------------------


def declared_all(path: Path) -> list[str] | None:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
            value = node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
            value = node.value
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return list(ast.literal_eval(value))
    return None


@pytest.mark.parametrize("path", [p for p in ALL_FILES if p.name != "__main__.py"], ids=module_name)
def test_every_module_declares_a_literal_all(path: Path) -> None:
    names = declared_all(path)
    assert names is not None, f"{module_name(path)} does not declare __all__"
    assert all(isinstance(n, str) for n in names)
    assert len(names) == len(set(names)), f"duplicates in {module_name(path)}.__all__"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_exported_name_exists(name: str) -> None:
    module = import_or_skip(name)
    exported = module.__all__  # type: ignore[attr-defined]
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"


@pytest.mark.parametrize(
    "name", ["wsmux", "wsmux.book", "wsmux.testing", "wsmux.errors", "wsmux.model", "wsmux.convert"]
)
def test_core_public_modules_exist_and_export(name: str) -> None:
    assert name in PUBLIC_MODULES
    module = importlib.import_module(name)
    assert module.__all__


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from wsmux import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(wsmux.__all__)


def test_top_level_reexports_every_event_and_enum() -> None:
    for name in model.__all__:
        obj = getattr(model, name)
        if isinstance(obj, type) and (issubclass(obj, model.Event) or issubclass(obj, enum.Enum)):
            assert name in wsmux.__all__, f"wsmux does not export {name}"
            assert getattr(wsmux, name) is obj


def test_top_level_errors_are_the_errors_module_classes() -> None:
    for name in wsmux.__all__:
        obj = getattr(wsmux, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert name in errors.__all__ and getattr(errors, name) is obj


def test_version() -> None:
    assert isinstance(wsmux.__version__, str) and wsmux.__version__.count(".") >= 2


# --- the exception tree ---------------------------------------------------------------------------


def test_every_error_is_a_wsmux_error_defined_in_errors() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert inspect.isclass(cls) and issubclass(cls, Exception), name
        assert issubclass(cls, errors.WsmuxError), name
        assert cls.__module__ == "wsmux.errors", name
        assert name not in dir(builtins), f"{name} shadows a builtin"


def test_no_other_module_defines_exceptions_outside_the_tree() -> None:
    for name in PUBLIC_MODULES:
        module = import_or_skip(name)
        for attr in module.__all__:  # type: ignore[attr-defined]
            obj = getattr(module, attr)
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                assert issubclass(obj, errors.WsmuxError), f"{name}.{attr} is outside the WsmuxError tree"


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (errors.LocalError, errors.WsmuxError),
        (errors.RemoteError, errors.WsmuxError),
        (errors.TransportError, errors.WsmuxError),
        (errors.BookError, errors.WsmuxError),
        (errors.LogError, errors.WsmuxError),
        (errors.ConfigError, errors.LocalError),
        (errors.UnknownVenue, errors.LocalError),
        (errors.UnknownChannel, errors.LocalError),
        (errors.UnknownSymbol, errors.LocalError),
        (errors.ClosedError, errors.LocalError),
        (errors.MalformedMessage, errors.RemoteError),
        (errors.SubscriptionRejected, errors.RemoteError),
        (errors.ConnectTimeout, errors.TransportError),
        (errors.ConnectionClosed, errors.TransportError),
        (errors.SnapshotFailed, errors.TransportError),
        (errors.SequenceGap, errors.BookError),
        (errors.ChecksumMismatch, errors.BookError),
        (errors.StreamOverflow, errors.WsmuxError),
    ],
)
def test_tree_shape(cls: type, parent: type) -> None:
    assert issubclass(cls, parent)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.ConfigError, ValueError),
        (errors.UnknownVenue, KeyError),
        (errors.UnknownChannel, ValueError),
        (errors.UnknownSymbol, ValueError),
        (errors.ClosedError, RuntimeError),
        (errors.MalformedMessage, ValueError),
        (errors.ConnectTimeout, TimeoutError),
        (errors.StreamOverflow, BufferError),
    ],
)
def test_errors_subclass_the_builtin_they_resemble(cls: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("x")


def test_local_and_remote_do_not_overlap() -> None:
    sides = [errors.LocalError, errors.RemoteError, errors.TransportError, errors.BookError, errors.LogError]
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert sum(issubclass(cls, side) for side in sides) <= 1, name
    # every local error is a builtin-compatible misuse error
    for name in errors.__all__:
        cls = getattr(errors, name)
        if issubclass(cls, errors.LocalError) and cls is not errors.LocalError:
            assert issubclass(cls, ValueError | KeyError | RuntimeError), name


def test_unknown_venue_message_is_prose() -> None:
    exc = errors.UnknownVenue("unknown venue 'nope'")
    assert str(exc) == "unknown venue 'nope'"  # not KeyError's repr-quoting
    assert str(errors.UnknownVenue()) == "unknown venue"


def test_malformed_message_keeps_a_truncated_frame() -> None:
    exc = errors.MalformedMessage("bad json", b"x" * 500)
    assert exc.reason == "bad json" and exc.frame == "x" * 200
    assert str(exc) == f"bad json: {'x' * 200!r}"
    assert errors.MalformedMessage("no frame").frame is None
    assert str(errors.MalformedMessage("no frame")) == "no frame"
    assert errors.MalformedMessage("bad utf8", b"\xff\xfe").frame == "\ufffd\ufffd"
    assert errors.MalformedMessage("text", "y" * 300).frame == "y" * 200
