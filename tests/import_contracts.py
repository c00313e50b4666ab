"""The import contract import-linter does not ship: no import cycles between modules.

`make lint-imports` runs it beside the built-in contracts (pyproject.toml,
[tool.importlinter]). import-linter's own `acyclic_siblings` contract compares
packages with their descendants squashed together; the layout asks for
something simpler and stricter: no module may come back to itself through the
modules it imports. Imports inside functions count (a late import hides a
cycle, it does not remove it); imports under `if TYPE_CHECKING:` do not, since
the top-level `exclude_type_checking_imports` leaves them out of the graph.
"""

from __future__ import annotations

from collections import deque

import grimp
from importlinter import Contract, ContractCheck, fields, output


class AcyclicModulesContract(Contract):
    """Every module of the listed packages, their descendants included, is on no import cycle."""

    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        modules: set[str] = set()
        for package in self.packages:  # type: ignore[attr-defined]
            modules |= {package.name} | graph.find_descendants(package.name)
        tangles = []
        for component in _strongly_connected_components(graph, modules):
            if len(component) > 1:
                cycle = _one_cycle_through(graph, component)
                imports = [(a, b, _line_numbers(graph, a, b)) for a, b in zip(cycle, cycle[1:])]
                tangles.append((sorted(component), imports))
        return ContractCheck(kept=not tangles, metadata={"tangles": sorted(tangles)})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for members, imports in check.metadata["tangles"]:
            output.print_error(f"{len(members)} modules reach each other: {', '.join(members)}")
            output.print_error("One of their cycles:", bold=False)
            for importer, imported, line_numbers in imports:
                output.print_error(f"- {importer} -> {imported} (l. {line_numbers})", bold=False)
            output.new_line()


def _strongly_connected_components(graph: grimp.ImportGraph, modules: set[str]) -> list[set[str]]:
    """Tarjan's algorithm without recursion, over the imports between `modules` only."""
    successors = {
        module: sorted((graph.find_modules_directly_imported_by(module) & modules) - {module})
        for module in modules
    }
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(successors[root]))]
        index[root] = lowlink[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, remaining = work[-1]
            for successor in remaining:
                if successor not in index:
                    index[successor] = lowlink[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(successors[successor])))
                    break
                if successor in on_stack:
                    lowlink[module] = min(lowlink[module], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowlink[parent] = min(lowlink[parent], lowlink[module])
                if lowlink[module] == index[module]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == module:
                            break
                    components.append(component)
    return components


def _one_cycle_through(graph: grimp.ImportGraph, component: set[str]) -> tuple[str, ...]:
    """The shortest way from the component's first module back to itself, first module repeated at the end."""
    start = min(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for imported in sorted((graph.find_modules_directly_imported_by(module) & component) - {module}):
            if imported == start:
                chain = [module]
                while chain[-1] != start:
                    chain.append(came_from[chain[-1]])
                return (*reversed(chain), start)
            if imported not in came_from:
                came_from[imported] = module
                queue.append(imported)
    raise AssertionError(f"{start} is in a strongly connected component but on no cycle")


def _line_numbers(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    return ", ".join(str(detail["line_number"]) for detail in details) or "?"
