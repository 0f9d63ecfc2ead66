"""The docs name every setting, command and error code (datasette's test_docs, in small)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from mpo_realtime.cli import app
from mpo_realtime.domain.errors import ErrorCode
from mpo_realtime.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_docs_operations_lists_every_setting(name: str) -> None:
    assert f"`MPO_{name.upper()}`" in (DOCS / "operations.md").read_text()


def _commands() -> list[str]:
    group = typer.main.get_group(app)
    context = typer.Context(group)
    names = []
    for name in group.list_commands(context):
        command = group.get_command(context, name)  # loads the lazy ones too
        sub = getattr(command, "commands", None)
        names += [f"mpo {name} {s}" for s in sub] if sub else [f"mpo {name}"]
    return names


@pytest.mark.parametrize("command", _commands())
def test_docs_operations_lists_every_command(command: str) -> None:
    assert f"`{command}" in (DOCS / "operations.md").read_text()


@pytest.mark.parametrize("code", [c.value for c in ErrorCode])
def test_docs_api_lists_every_error_code(code: str) -> None:
    assert f"`{code}`" in (DOCS / "api.md").read_text()


ROOT = DOCS.parent
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_CODE_PATH = re.compile(r"`([\w./-]+\.md)(?:#[\w-]+)?`")


def _prose(page: Path) -> str:
    return _FENCE.sub("", page.read_text())


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.*)$", _prose(page), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _broken_links(page: Path) -> list[str]:
    broken = []
    for target in _LINK.findall(_prose(page)):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not ours to check offline
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_docs_relative_links_resolve(page: Path) -> None:
    assert not _broken_links(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_docs_name_only_files_in_the_repository(page: Path) -> None:
    """A page named in backticks (`docs/api.md`) exists, beside the page or from the root."""
    missing = [
        name
        for name in _CODE_PATH.findall(_prose(page))
        if not (page.parent / name).exists() and not (ROOT / name).exists()
    ]
    assert not missing


def test_docs_link_checker_finds_broken_files_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("## Some `code`: here\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[ok](#title) [bad](#nowhere) [gone](missing.md) "
        "[there](other.md#some-code-here) [web](https://example.com/x)\n"
        "```sh\n[not a link](nowhere.md)\n```\n"
    )
    assert _broken_links(page) == [
        "#nowhere: no heading #nowhere in page.md",
        f"missing.md: no file {tmp_path / 'missing.md'}",
    ]
