"""Reading YAML files strictly: a syntax error, a duplicated key or an empty file is a
:class:`~lutforge.support.errors.UsageError` naming the file (and line), never a silent default."""

from pathlib import Path

import yaml

from .errors import MissingFileError, UsageError

__all__ = ["load_yaml", "parse_yaml"]


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping with the same key twice (PyYAML keeps the last)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool, type(None))):
            raise UsageError(f"{loader.name}, line {key_node.start_mark.line + 1}: a key must be a plain value, "
                             f"not {type(key).__name__} {key!r}; write the key as text.")
        if key in seen:
            raise UsageError(
                f"{loader.name}, line {key_node.start_mark.line + 1}: key {key!r} is given twice (first on "
                f"line {seen[key] + 1}); keep one of them.")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_yaml(text: str, name: str, fix: str = "fix the file"):
    """The YAML document ``text`` (called ``name`` in messages, ``fix`` the remedy they give), strictly."""
    loader = _StrictLoader(text)
    loader.name = name
    try:
        return loader.get_single_data()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UsageError(f"{name}{where} is not valid YAML: {problem}; {fix}.") from None
    finally:
        loader.dispose()


def load_yaml(path, what: str = "file"):
    """The YAML ``file`` at ``path`` (``what`` names its role in messages); an empty document is an
    error, since a configuration that says nothing is more often a mistake than a wish for defaults."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise MissingFileError(f"The {what} {path} does not exist; check the path.") from None
    except IsADirectoryError:
        raise UsageError(f"The {what} {path} is a directory; give a YAML file.") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"The {what} {path} is not UTF-8 text (byte {error.start}); give a YAML file.") from None
    data = parse_yaml(text, str(path))
    if data is None:
        raise UsageError(f"The {what} {path} is empty; write the settings it should hold, or leave the "
                         f"option out to use the defaults.")
    return data
