"""The package's imports go one way: no module imports, directly or through others, one that imports it."""
import ast
from pathlib import Path

import personalization

PACKAGE = Path(personalization.__file__).parent


def module_imports():
    """{module: the package's modules it imports (at the top or inside a function)}."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("personalization", *path.relative_to(PACKAGE).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])])
                for alias in node.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = (found & set(modules)) - {name}
    return graph


def cycle_through(graph, start):
    """A path of imports from `start` back to it, or None."""
    stack, seen = [(start, [start])], set()
    while stack:
        name, path = stack.pop()
        for imported in graph[name]:
            if imported == start:
                return [*path, start]
            if imported not in seen:
                seen.add(imported)
                stack.append((imported, [*path, imported]))
    return None


def test_the_package_has_no_import_cycle():
    graph = module_imports()
    # The package itself (personalization/__init__.py) is imported by every module's name; it imports nothing.
    cycles = [cycle for name in graph if name != "personalization" and (cycle := cycle_through(graph, name))]

    assert not cycles, " -> ".join(cycles[0])


def test_the_shopper_state_sits_below_capture_and_serving():
    imported = module_imports()["personalization.state"]

    assert not {name for name in imported if name.startswith("personalization.capture")}
    assert not {name for name in imported if name.startswith(("personalization.serving", "personalization.learning"))}


def test_the_check_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert cycle_through(graph, "a") == ["a", "b", "c", "a"]
    assert cycle_through(graph, "d") is None


ENTRY_POINTS = ("capture.receivers", "tasks", "management", "api", "templatetags", "admin", "urls", "views",
                "dashboard.views")


def entry_point(name):
    """The entry point `name` belongs to ("api" for personalization.api.views), or None."""
    inside = name.removeprefix("personalization.")
    return next((point for point in ENTRY_POINTS if inside == point or inside.startswith(point + ".")), None)


def imports_where(keep):
    """{(module, a module it imports)} of the package for which keep(module, imported) holds."""
    return {(name, imported) for name, imports in module_imports().items() for imported in imports if keep(name, imported)}


def test_entry_points_never_import_each_other_except_a_urlconf_its_views():
    def crosses(name, imported):
        return entry_point(name) and entry_point(imported) and entry_point(name) != entry_point(imported)

    crossing = imports_where(crosses)
    urlconf_views = {
        ("personalization.urls", "personalization.views"),
        ("personalization.urls", "personalization.dashboard.views"),
    }

    assert crossing - urlconf_views == set()


def test_entry_points_reach_the_models_through_learning_and_serving_only():
    direct = imports_where(lambda name, imported: entry_point(name) and imported.startswith("personalization.ml"))

    assert direct == set()


def test_capture_imports_nothing_downstream_but_its_receivers():
    downstream = ("learning", "serving", "coupons", "promotions", "experiments", "dashboard", "operations")

    def reaches_downstream(name, imported):
        capture = name.startswith("personalization.capture.") and name != "personalization.capture.receivers"
        return capture and imported.removeprefix("personalization.").split(".")[0] in downstream

    reaching = imports_where(reaches_downstream)

    assert reaching == set()
