"""The package's import graph has no cycles, counting imports inside functions too."""

import ast

from conftest import REPO

PACKAGE = REPO / "jaxgan"


def modules() -> dict[str, object]:
  found = {}
  for path in PACKAGE.rglob("*.py"):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
      parts = parts[:-1]
    found[".".join(parts)] = path
  return found


def import_graph() -> dict[str, set[str]]:
  """{module: the package's modules it imports}, read from the source (nothing is run)."""
  mods = modules()

  def resolve(name: str) -> str:  # a name inside a module: that module
    while name not in mods and "." in name:
      name = name.rsplit(".", 1)[0]
    return name

  graph = {m: set() for m in mods}
  for module, path in mods.items():
    for node in ast.walk(ast.parse(path.read_text())):
      names = []
      if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names = [f"{node.module}.{a.name}" for a in node.names]
      graph[module] |= {resolve(n) for n in names if n.split(".")[0] == "jaxgan"}
    graph[module].discard(module)
  return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph[v]:
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while not component or component[-1] != v:
        component.append(stack.pop())
        on_stack.discard(component[-1])
      if len(component) > 1:
        found.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return found


def test_the_package_imports_without_cycles():
  graph = import_graph()
  assert "jaxgan.layers_cpu" in graph["jaxgan.layers"]  # the reading sees real imports
  assert cycles(graph) == []


def test_a_cycle_is_found():
  assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_errors_module_imports_nothing_of_the_package():
  """Every module may raise the user errors: jaxgan.errors depends on no other module."""
  assert import_graph()["jaxgan.errors"] == set()
