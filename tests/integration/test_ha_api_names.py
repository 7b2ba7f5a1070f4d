"""Every Home Assistant name the integration uses exists in the Home Assistant it runs on.

A name that Home Assistant renamed or removed only fails when its line runs, which for a rarely
taken path may be in a user's installation. Reading the integration's source (``ast``) finds every
``from homeassistant... import name`` and every ``module.name`` / ``Class.name`` used through such
an import, and each is looked up in the installed Home Assistant. Names Home Assistant keeps only
as deprecated aliases (its ``_DEPRECATED_<name>`` constants) count as missing.

An import inside ``try: ... except ImportError:`` is a newer name with its older fallback in the
handler: only the fallback has to exist here, and at least one of the two does. An import under
``if TYPE_CHECKING:`` serves annotations alone and never runs; it may name something newer than the
test core, but only a name listed in ``NEWER_THAN_TEST_CORE`` with the release that added it.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from homeassistant.const import MAJOR_VERSION, MINOR_VERSION

INTEGRATION = REPO / "custom_components" / "image_to_text"


@dataclass(frozen=True)
class NameUse:
    """One Home Assistant name as the integration uses it."""

    module: str
    path: tuple[str, ...]
    where: str
    optional: bool = False
    local: str = ""
    #: Used only in annotations and newer than the test core (``NEWER_THAN_TEST_CORE``).
    newer: bool = False

    def __str__(self) -> str:
        return f"{self.module}:{'.'.join(self.path)} ({self.where})"


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(name, ast.Name) and name.id == "ImportError" for name in names):
            return True
    return False


#: Names used only in annotations that Home Assistant added after 2024.3 (the test core).
NEWER_THAN_TEST_CORE = {"homeassistant.config_entries:ConfigFlowResult": "2024.4"}


def _annotation_only_imports(tree: ast.Module) -> set[int]:
    """Ids of imports in the body of ``if TYPE_CHECKING:``."""
    found: set[int] = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            found.update(id(child) for stmt in node.body for child in ast.walk(stmt))  # type: ignore[attr-defined]
    return found


def _optional_imports(tree: ast.Module) -> set[int]:
    """Ids of imports in the body of a ``try`` whose handler catches ImportError."""
    optional: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and _catches_import_error(node):
            optional.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return optional


def _name_uses(source: Path) -> list[NameUse]:
    tree = ast.parse(source.read_text(), filename=str(source))
    optional = _optional_imports(tree)
    annotation_only = _annotation_only_imports(tree)
    uses: list[NameUse] = []
    # local name -> (module, attribute path) it stands for
    bound: dict[str, tuple[str, tuple[str, ...]]] = {}
    for node in ast.walk(tree):
        where = f"{source.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("homeassistant"):
            module = str(node.module)
            for alias in node.names:
                local = alias.asname or alias.name
                newer = (
                    id(node) in annotation_only and f"{module}:{alias.name}" in NEWER_THAN_TEST_CORE
                )
                uses.append(
                    NameUse(module, (alias.name,), where, id(node) in optional, local, newer)
                )
                bound[alias.asname or alias.name] = (module, (alias.name,))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("homeassistant"):
                    uses.append(NameUse(alias.name, (), where, id(node) in optional))
                    if alias.asname:
                        bound[alias.asname] = (alias.name, ())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
        ):
            module, path = bound[node.value.id]
            uses.append(NameUse(module, (*path, node.attr), f"{source.name}:{node.lineno}"))
    return uses


ALL_USES = [use for source in sorted(INTEGRATION.glob("*.py")) for use in _name_uses(source)]


def _resolve(use: NameUse) -> Any:
    """What a use names in the installed Home Assistant; AttributeError/ImportError if nothing."""
    obj: Any = importlib.import_module(use.module)
    module_name = use.module
    for part in use.path:
        if not hasattr(obj, part) and module_name:
            # ``from homeassistant.helpers import selector`` names a submodule
            importlib.import_module(f"{module_name}.{part}")
        if module_name and hasattr(obj, f"_DEPRECATED_{part}"):
            raise AttributeError(f"{module_name}.{part} is a deprecated alias")
        obj = getattr(obj, part)
        module_name = obj.__name__ if isinstance(obj, type(importlib)) else ""
    return obj


def test_the_integration_uses_home_assistant_names_at_all() -> None:
    """The scan works: it sees the names every platform needs."""
    seen = {str(use).split(" ", 1)[0] for use in ALL_USES}
    assert "homeassistant.components:mqtt.async_subscribe" in seen
    assert "homeassistant.config_entries:ConfigFlow" in seen
    assert "homeassistant.helpers:selector.SelectSelector" in seen


@pytest.mark.parametrize(
    "use", [use for use in ALL_USES if not use.optional and not use.newer], ids=str
)
def test_every_home_assistant_name_the_integration_uses_exists(use: NameUse) -> None:
    _resolve(use)


def _core_has(release: str) -> bool:
    """Whether the Home Assistant this suite runs on is ``release`` (``"2024.4"``) or newer."""
    major, minor = (int(part) for part in release.split(".")[:2])
    return (major, minor) <= (MAJOR_VERSION, MINOR_VERSION)


def test_names_newer_than_the_test_core_serve_annotations_only_and_exist_from_their_release() -> (
    None
):
    """Each listed name is really used, only under TYPE_CHECKING, and missing before its release.

    The suite also runs on today's core (2026.x), where each one must exist.
    """
    newer = {str(use).split(" ", 1)[0] for use in ALL_USES if use.newer}
    assert newer == set(NEWER_THAN_TEST_CORE)
    for use in (use for use in ALL_USES if use.newer):
        if _core_has(NEWER_THAN_TEST_CORE[str(use).split(" ", 1)[0]]):
            _resolve(use)
        else:
            with pytest.raises((AttributeError, ImportError)):
                _resolve(use)


def test_every_newer_name_has_a_fallback_that_exists_here() -> None:
    """An optional (``try``) import of a newer name either resolves or falls back to one that does.

    Home Assistant 2024.3, the test environment, lacks e.g. ``ConfigFlowResult``; the code then
    imports ``FlowResult`` under that name, which the parametrized test above looks up.
    """
    for use in (use for use in ALL_USES if use.optional):
        try:
            _resolve(use)
        except (AttributeError, ImportError):
            fallbacks = [
                other
                for other in ALL_USES
                if not other.optional
                and other.local == use.local
                and other.where.split(":")[0] == use.where.split(":")[0]
            ]
            assert fallbacks, f"{use} does not exist here and has no fallback import"
