"""The import rules of CONTRIBUTING.md, read from the source: folders import only downward in the
layer order written there, and no module imports itself through others (no cycle between files)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layer_order() -> list[str]:
    """The folders of the "Layer order" line of CONTRIBUTING.md, lowest first."""
    line = next(line for line in (ROOT / "CONTRIBUTING.md").read_text().splitlines()
                if line.startswith("Layer order"))
    return re.findall(r"`(\w+)/`", line)


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", "bench") or rel.parts[0].startswith("."):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(["lutforge", *parts])] = path
    return found


def imports(name: str, path: Path, known) -> set[str]:
    """Every lutforge module ``name`` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            candidates = [module] + [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        out |= {c for c in candidates if c in known and c != name}
    return out


def folder(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or f"{parts[-1]}/" in _FOLDERS else "(root)"


_FOLDERS = {f"{p.name}/" for p in ROOT.iterdir() if (p / "__init__.py").exists()}


def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_package_is_in_the_layer_order():
    order = layer_order()
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"}
    assert packages == set(order), (
        f"CONTRIBUTING.md's layer order names {sorted(order)} but the packages are {sorted(packages)}; "
        f"add the new package to the 'Layer order' line.")


def test_folders_import_only_downward():
    rank = {name: i for i, name in enumerate(layer_order())}
    bad = []
    for source, targets in graph().items():
        for target in targets:
            a, b = folder(source), folder(target)
            if a in rank and b in rank and rank[b] > rank[a]:
                bad.append(f"{source} ({a}/) imports {target} ({b}/)")
    assert not bad, "imports against the layer order of CONTRIBUTING.md:\n" + "\n".join(sorted(bad))


def test_no_import_cycle_between_files():
    edges = graph()
    # Tarjan's strongly connected components; a component of more than one module is a cycle.
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles, "modules that import each other (directly or through others):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The rules above can fail: a planted upward import and a planted cycle are found."""
    known = {"lutforge.golden.a": tmp_path / "a.py", "lutforge.cli.b": tmp_path / "b.py"}
    known["lutforge.golden.a"].write_text("def f():\n    from ..cli.b import g\n")
    known["lutforge.cli.b"].write_text("from ..golden.a import f\n")
    assert imports("lutforge.golden.a", known["lutforge.golden.a"], known) == {"lutforge.cli.b"}
    assert imports("lutforge.cli.b", known["lutforge.cli.b"], known) == {"lutforge.golden.a"}
