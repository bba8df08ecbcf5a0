"""Reading user files (specs, plans) with bounds: size, nesting, alias expansion, duplicate keys.

A 1 KB YAML file can describe a billion values through aliases (the "billion laughs"): PyYAML
shares the objects, so loading is quick, but anything that walks or prints the value afterwards
(a validator, an error message) expands it and hangs. Every user file is therefore bounded
*before* it is expanded:

- at most `MAX_FILE_BYTES` bytes, UTF-8 text (a binary or UTF-16 file is refused by name);
- at most `MAX_DEPTH` levels of nesting;
- at most `MAX_NODES` values once every alias is expanded;
- no key twice in one mapping (YAML lets the last one silently win).

`bounded_repr` prints any value in a bounded number of characters without expanding it.
"""

from __future__ import annotations

import reprlib
import tomllib
from pathlib import Path

import yaml

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a spec or plan is a few KB
MAX_DEPTH = 32  # nesting levels of mappings and lists
MAX_NODES = 100_000  # values after alias expansion


class InputFileError(ValueError):
    """A user file is too large, not text, not parseable, or beyond the bounds above; the message
    names the file (and the line where one is known)."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting limit and a refusal of duplicate keys."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):  # noqa: D102 (PyYAML hook)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise InputFileError(f"line {mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):  # noqa: D102 (PyYAML hook)
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:  # an unhashable key: PyYAML's own error follows
                    continue
                if first != key_node.start_mark.line + 1:
                    raise InputFileError(f"line {key_node.start_mark.line + 1}: key {bounded_repr(key)} "
                                         f"appears twice (first on line {first}); YAML would keep the last silently")
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node) -> int:
    """Values in ``node`` with every alias expanded, computed without expanding (memoized by node)."""
    sizes: dict[int, int] = {}
    stack = [(node, False)]
    while stack:
        current, done = stack.pop()
        if id(current) in sizes:
            continue
        children = []
        if isinstance(current, yaml.SequenceNode):
            children = current.value
        elif isinstance(current, yaml.MappingNode):
            children = [n for pair in current.value for n in pair]
        if done:
            sizes[id(current)] = min(1 + sum(sizes[id(c)] for c in children), MAX_NODES + 1)
        else:
            stack.append((current, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(node)]


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputFileError(f"{path}: {size:,} bytes; at most {MAX_FILE_BYTES:,} bytes are read")
    data = path.read_bytes()
    if b"\x00" in data:
        raise InputFileError(f"{path}: a binary file (or UTF-16), not UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputFileError(f"{path}: not UTF-8 text (byte {err.start}: {data[err.start:err.start + 1]!r})") from None


def parse_yaml(text: str, source: str) -> object:
    """One YAML document within the bounds above; errors name ``source`` and the line."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node)
        if size > MAX_NODES:
            raise InputFileError(f"more than {MAX_NODES:,} values once its aliases are expanded "
                                 "(an alias bomb?)")
        return loader.construct_document(node)
    except InputFileError as err:
        raise InputFileError(f"{source}: {err}") from None
    except yaml.YAMLError as err:
        raise InputFileError(f"{source}: not valid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise InputFileError(f"{source}: nested too deeply") from None
    finally:
        loader.dispose()


def load_yaml_file(path: str | Path) -> object:
    """Read a YAML file within the bounds above (see the module docstring)."""
    path = Path(path)
    return parse_yaml(_read_text(path), str(path))


def load_toml_file(path: str | Path) -> object:
    """Read a TOML file within the size bound (TOML has no aliases and refuses duplicate keys)."""
    path = Path(path)
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputFileError(f"{path}: not valid TOML: {err}") from None
    except RecursionError:
        raise InputFileError(f"{path}: nested too deeply") from None
    if _depth(data) > MAX_DEPTH:
        raise InputFileError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    return data


def _depth(value: object, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def find_bool(value: object, path: tuple = ()) -> tuple | None:
    """The path of the first ``true``/``false`` in a parsed file, or None. Neither spec nor plan has
    a yes/no field, and pydantic would read ``true`` as 1 (a rate of 1 Hz, a budget of 1 demo)."""
    if isinstance(value, bool):
        return path
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = find_bool(item, (*path, key))
        if found is not None:
            return found
    return None


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple = 2, 4, 6, 6
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 60, 60, 40


def bounded_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` in at most ``limit`` characters, never expanding more than a few levels."""
    shown = _REPR.repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
