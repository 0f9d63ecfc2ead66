"""Every module says what it exports, and exports what it says (httpx's test, in small)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import mpo_realtime

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(mpo_realtime.__path__, "mpo_realtime.")
    if ".migrations" not in info.name and not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_module_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert not module.__file__ or module.__file__.endswith("__init__.py"), (
            f"{name} has no __all__"
        )
        return
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names {missing}, which it does not define"
