"""The package's layout: folders import one way (data -> layers -> models -> serving ->
tasks -> training -> commands), and no module imports itself back through others,
function-local imports included. A module's `if __name__ == "__main__":` block is a
command and may import the commands."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_video"

# Each unit (a folder, or a module of the top level) and its level: a module may import
# modules of its own level and the levels before it, never a later one.
LEVELS = (
    ("runtime", "hardware"),  # how TensorFlow runs on this CPU: nothing of TF at import
    ("data", "plots"),  # files -> decoded frames -> clips -> tf.data batches; plots
    ("layers", "conversion", "losses", "optimizers"),  # Keras pieces; .pth reading
    ("models", "saving", "run_dir"),  # builders and their weights; a run's files
    ("serving",),  # the SavedModel a run exports; the streaming engine
    ("tasks",),  # what differs between kinds of work: inputs, losses, metrics, pictures
    ("training",),  # the settings and the one trainer that runs any task
    ("commands", "train", "evaluate", "predict", "convert", "export"),  # flags, help, a call
)
LEVEL = {unit: i for i, units in enumerate(LEVELS) for unit in units}


def _modules():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _is_main_block(node):
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name) and test.left.id == "__name__")


def _imports(name, path, modules):
    """The keras_video modules `name` imports anywhere but in its __main__ block."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def visit(node):
        if _is_main_block(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                found.add(full if full in modules else module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in modules and m != name}


def _unit(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


GRAPH = None


def graph():
    global GRAPH
    if GRAPH is None:
        modules = _modules()
        GRAPH = {name: _imports(name, path, modules) for name, path in modules.items()}
    return GRAPH


def test_every_unit_has_a_level():
    units = {_unit(m) for m in graph()} - {None}
    assert units <= set(LEVEL), f"no level for {sorted(units - set(LEVEL))}"


def test_imports_go_one_way():
    backwards = []
    for module, imported in graph().items():
        if _unit(module) is None:
            continue
        for other in imported:
            if _unit(other) is not None and LEVEL[_unit(other)] > LEVEL[_unit(module)]:
                backwards.append(f"{module} -> {other}")
    assert not backwards, "imports against the layout:\n" + "\n".join(sorted(backwards))


def test_no_import_cycle():
    edges, cycles = graph(), []
    state = {}

    def visit(module, stack):
        state[module] = "open"
        for other in sorted(edges[module]):
            if other.startswith(module + ".") or module.startswith(other + "."):
                continue  # a package and its own modules (its __init__ re-exports)
            if state.get(other) == "open":
                cycles.append(" -> ".join(stack[stack.index(other):] + [other]))
            elif other not in state:
                visit(other, stack + [other])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("source,expected", [
    ("from keras_video.tasks import clip\n", {"keras_video.tasks.clip"}),
    ("def f():\n    from keras_video.data import sources\n", {"keras_video.data.sources"}),
    ('if __name__ == "__main__":\n    from keras_video.commands import train\n', set()),
])
def test_the_import_finder_sees_function_local_imports(tmp_path, source, expected):
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert _imports("keras_video.data.probe", path, _modules()) == expected
