"""The docs are part of the contract: these tests fail when they drift from the code.

* every ``Settings`` field has a row in ``docs/configuration.md`` (and no row names a setting
  that does not exist), with the right default;
* every subcommand and option of ``assistantd`` is in ``docs/configuration.md``, and every
  command line written there parses;
* the endpoint table in ``docs/compatibility.md`` lists exactly the app's routes as
  ``supported``.

No server and no database: building the app only creates an (unconnected) engine.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from assistantd import cli
from assistantd.app import create_app
from assistantd.config import Settings

# FastAPI 0.137+ nests included routers in app.routes; 0.137.2 added this public walker.
# Before 0.137, app.routes is already a flat list of routes.
iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)

DOCS = Path(__file__).resolve().parent.parent / "docs"
CONFIGURATION = DOCS / "configuration.md"
COMPATIBILITY = DOCS / "compatibility.md"

ENV_PREFIX = str(Settings.model_config.get("env_prefix", "")).upper()
ENV_NAME = re.compile(rf"\b{ENV_PREFIX}[A-Z0-9_]*[A-Z0-9]\b")
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
STATUSES = {"supported", "planned"}
# How the settings table spells a field's type.
TYPE_WORDS = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}


# --- markdown helpers ---------------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _plain(cell: str) -> str:
    return cell.replace("`", "").strip()


def _table_rows(text: str, first_header: str) -> Iterator[list[str]]:
    """Body rows of every table whose first header cell is ``first_header``."""
    in_table = False
    for line in text.splitlines():
        if not line.lstrip().startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if cells[0].lower() == first_header:
            in_table = True
        elif in_table and not set(line.strip()) <= set("|-: "):
            yield cells


def _code(text: str) -> Iterator[tuple[str, str]]:
    """(fence language or "inline", content) of every code block and inline code span."""
    fenced = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
    for match in fenced.finditer(text):
        yield match.group(1), match.group(2)
    for span in re.findall(r"`([^`\n]+)`", fenced.sub("", text)):
        yield "inline", span


# --- settings -----------------------------------------------------------------------------------


def _env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _settings_table() -> dict[str, list[str]]:
    rows = _table_rows(CONFIGURATION.read_text(encoding="utf-8"), "variable")
    return {_plain(row[0]): row for row in rows}


def _documented_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, Path):
        try:
            return "~/" + value.relative_to(Path.home()).as_posix()
        except ValueError:
            return value.as_posix()
    return str(value)


def _type_word(annotation: Any) -> str | None:
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not NoneType]
        annotation = args[0] if len(args) == 1 else None
    return TYPE_WORDS.get(annotation)


def test_every_setting_is_documented_and_nothing_else() -> None:
    named = set(ENV_NAME.findall(CONFIGURATION.read_text(encoding="utf-8")))
    expected = {_env_name(name) for name in Settings.model_fields}
    assert not expected - named, f"settings missing from {CONFIGURATION.name}"
    assert not named - expected, f"{CONFIGURATION.name} names settings that do not exist"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_setting_row_matches_the_code(name: str) -> None:
    table = _settings_table()
    variable = _env_name(name)
    assert variable in table, f"no row for {variable} in the settings table"
    _variable, type_cell, default_cell, meaning = table[variable][:4]
    field = Settings.model_fields[name]
    default = field.get_default(call_default_factory=True)
    assert _plain(default_cell) == _documented_default(default), f"default of {variable}"
    word = _type_word(field.annotation)
    if word is not None:
        assert _plain(type_cell) == word, f"type of {variable}"
    assert meaning, f"{variable} has no meaning"


def test_settings_table_has_no_unknown_rows() -> None:
    expected = {_env_name(name) for name in Settings.model_fields}
    assert set(_settings_table()) <= expected


# --- command line -------------------------------------------------------------------------------


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("assistantd",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _synopsis(parser: argparse.ArgumentParser) -> list[str]:
    """What a command's documented line must show: its options and positional arguments."""
    words = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.option_strings:
            words.append(max(action.option_strings, key=len))
        else:
            words.append(str(action.metavar or action.dest).upper())
    return words


COMMANDS = [(" ".join(path), parser) for path, parser in _commands(cli._parser())]


@pytest.mark.parametrize(("command", "parser"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_command_is_documented(command: str, parser: argparse.ArgumentParser) -> None:
    """One line of the doc shows the command with all its options and arguments."""
    words = _synopsis(parser)
    lines = CONFIGURATION.read_text(encoding="utf-8").splitlines()
    assert any(
        re.search(rf"{re.escape(command)}(?![\w-])", line) and all(w in line for w in words)
        for line in lines
    ), f"no line of {CONFIGURATION.name} shows `{command}` with {words}"


def test_documented_options_exist() -> None:
    known = {
        option
        for _path, parser in _commands(cli._parser())
        for action in parser._actions
        for option in action.option_strings
    }
    text = CONFIGURATION.read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    assert not named - known, f"{CONFIGURATION.name} names options the CLI does not have"


def test_documented_subcommands_exist() -> None:
    """Every `assistantd ...` in code names a real command path."""
    for _lang, code in _code(CONFIGURATION.read_text(encoding="utf-8")):
        for match in re.finditer(r"(?<![\w-])assistantd((?: [a-z][a-z0-9-]*)*)", code):
            parser = cli._parser()
            for word in match.group(1).split():
                choices = _subcommands(parser)
                if not choices:
                    break  # a leaf command: the rest are its arguments
                assert word in choices, f"`{match.group(0)}`: no subcommand {word!r}"
                parser = choices[word]


def test_documented_examples_parse() -> None:
    """Every command line in a shell block of the doc is accepted by the real parser."""
    examples = [
        line.split("|")[0].strip()
        for lang, code in _code(CONFIGURATION.read_text(encoding="utf-8"))
        if lang in ("sh", "bash", "shell")
        for line in code.splitlines()
        if line.startswith("assistantd ")
    ]
    assert examples, f"{CONFIGURATION.name} has no shell examples"
    for example in examples:
        try:
            cli._parser().parse_args(shlex.split(example)[1:])
        except SystemExit:
            pytest.fail(f"the documented command does not parse: {example}")


# --- endpoints ----------------------------------------------------------------------------------


def _compatibility_rows() -> list[tuple[str, str, str]]:
    """(method, path, status) of every row of the endpoint table."""
    rows = []
    for cells in _table_rows(COMPATIBILITY.read_text(encoding="utf-8"), "#"):
        assert len(cells) >= 5, f"short row: {cells}"
        rows.append((_plain(cells[1]).upper(), _plain(cells[2]), _plain(cells[4]).lower()))
    return rows


def _routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every API route, HEAD aside."""
    if iter_route_contexts is not None:
        flat = [(c.original_route, c.path, c.methods) for c in iter_route_contexts(app.routes)]
    else:
        flat = [(r, getattr(r, "path", None), getattr(r, "methods", None)) for r in app.routes]
    return {
        (method, str(path))
        for route, path, methods in flat
        if isinstance(route, APIRoute)
        for method in methods or ()
        if method != "HEAD"
    }


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """The routes of an app built on default settings, with no environment or ``.env``."""
    tmp = tmp_path_factory.mktemp("docs")
    data_dir, database = tmp / "data", tmp / "docs.db"
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.upper().startswith(ENV_PREFIX):
                env.delenv(name)
        settings = Settings(
            _env_file=None, data_dir=data_dir, database_url=f"sqlite+aiosqlite:///{database}"
        )
        found = _routes(create_app(settings))
    assert not database.exists(), "create_app touched the database"
    assert not data_dir.exists(), "create_app touched the data directory"
    assert found, "no routes found: has FastAPI changed how app.routes is walked?"
    return found


def test_compatibility_table_is_well_formed() -> None:
    rows = _compatibility_rows()
    assert rows, f"no endpoint table in {COMPATIBILITY.name}"
    for method, path, status in rows:
        assert method in HTTP_METHODS, f"{method} {path}: unknown method"
        assert path.startswith("/"), f"{method} {path}: not a path"
        assert status in STATUSES, f"{method} {path}: status {status!r} not in {STATUSES}"
    keys = [(method, path) for method, path, _status in rows]
    assert len(keys) == len(set(keys)), "an endpoint is listed twice"


def test_every_route_is_documented_as_supported(routes: set[tuple[str, str]]) -> None:
    status = {(method, path): s for method, path, s in _compatibility_rows()}
    missing = sorted(r for r in routes if r not in status)
    assert not missing, f"routes missing from {COMPATIBILITY.name}: {missing}"
    not_supported = sorted(r for r in routes if status[r] != "supported")
    assert not not_supported, f"routes that exist but are not marked supported: {not_supported}"


def test_every_supported_row_is_a_route(routes: set[tuple[str, str]]) -> None:
    claimed = {(m, p) for m, p, s in _compatibility_rows() if s == "supported"}
    absent = sorted(claimed - routes)
    assert not absent, f"{COMPATIBILITY.name} marks these supported, but no route exists: {absent}"
