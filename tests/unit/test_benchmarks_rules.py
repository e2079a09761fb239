"""Every benchmark follows issue 21's rules, checked on its source (no benchmark is run):

- it prints what it ran on: calls `benchmarks.machine.machine()`;
- it measures CPU over the process tree with the servers apart: calls
  `benchmarks.measure.cpu_snapshot` or `tree_cpu_seconds` (not `time.process_time` alone, which
  left out pool processes, the KCL daemon and its children: 2-5x under);
- it reports the median of several runs with the spread: calls `benchmarks.measure.spread`;
- where it measures an in-memory fake in place of production's I/O (a `tests.support.memory_*`
  store or a class of its own named Fake/InMemory/Bytes...), it says so in what it prints: a
  string literal saying "fake" reaches a print call.

A call counts only when the name is bound by an import of that module and then called: an
unused import, a same-named local function or a mention in a comment does not. Every script
follows them: there is no list of exceptions.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("bench_*.py"))

_FAKE_CLASS_WORDS = ("Fake", "InMemory", "Memory", "Bytes", "Discard")


@dataclass
class Findings:
    """What one script's source does, as far as the rules care."""

    calls: set[str] = field(default_factory=set)  # "module.function" actually called
    fakes: set[str] = field(default_factory=set)
    says_fake: bool = False


def _bound_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> "module.attr" (from-imports) or "module" (plain imports)."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    bound[alias.name.split(".", 1)[0]] = alias.name.split(".", 1)[0]
    return bound


def _shadowed(tree: ast.Module) -> set[str]:
    """Names the script defines itself (a local `def machine()` must not count)."""
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _mentions_fake(node: ast.AST) -> bool:
    return any(
        isinstance(sub, ast.Constant) and isinstance(sub.value, str) and "fake" in sub.value.lower()
        for sub in ast.walk(node)
    )


def findings(source: str) -> Findings:
    tree = ast.parse(source)
    bound = _bound_names(tree)
    shadowed = _shadowed(tree)
    found = Findings()
    # A module-level string constant that says "fake" and is printed by name also counts.
    fake_constants = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign) and _mentions_fake(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is not None:
                head, _, rest = name.partition(".")
                if head in bound and head not in shadowed:
                    found.calls.add(f"{bound[head]}.{rest}" if rest else bound[head])
                if name == "print" and (
                    _mentions_fake(node)
                    or any(
                        isinstance(sub, ast.Name) and sub.id in fake_constants
                        for sub in ast.walk(node)
                    )
                ):
                    found.says_fake = True
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("tests.support.memory_"):
                found.fakes.add(node.module)
        elif isinstance(node, ast.ClassDef) and node.name.startswith(_FAKE_CLASS_WORDS):
            found.fakes.add(node.name)
    return found


def broken_rules(source: str) -> list[str]:
    found = findings(source)
    broken = []
    if "benchmarks.machine.machine" not in found.calls:
        broken.append("prints no machine line: call benchmarks.machine.machine()")
    if not found.calls & {"benchmarks.measure.cpu_snapshot", "benchmarks.measure.tree_cpu_seconds"}:
        broken.append("no process-tree CPU: call benchmarks.measure.cpu_snapshot/tree_cpu_seconds")
    if "benchmarks.measure.spread" not in found.calls:
        broken.append("no median and spread of runs: call benchmarks.measure.spread")
    if found.fakes and not found.says_fake:
        broken.append(f"measures fakes {sorted(found.fakes)} without printing that it does")
    return broken


def _source(script: str) -> str:
    return (BENCHMARKS / f"{script}.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_prints_its_machine_tree_cpu_and_spread_and_names_its_fakes(
    script: str,
) -> None:
    assert broken_rules(_source(script)) == []


COMPLIANT = """
from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread
print(machine())
before = cpu_snapshot()
print(spread([1.0, 2.0, 3.0]).show())
"""


def test_the_check_passes_a_script_that_calls_all_three() -> None:
    assert broken_rules(COMPLIANT) == []


@pytest.mark.parametrize(
    "fooled",
    [
        # imported, never called
        COMPLIANT.replace("print(machine())", "machine"),
        # a local function of the same name
        COMPLIANT.replace("from benchmarks.machine import machine", "def machine(): return ''"),
        # named only in a comment
        COMPLIANT.replace("before = cpu_snapshot()", "# cpu_snapshot()"),
        # the spread imported from elsewhere
        COMPLIANT.replace(
            "from benchmarks.measure import cpu_snapshot, spread",
            "from benchmarks.measure import cpu_snapshot\nfrom statistics import median as spread",
        ),
        # a fake store measured silently
        COMPLIANT + "from tests.support.memory_objects import InMemoryObjectStore\n",
        COMPLIANT + "class FakeS3:\n    pass\n",
    ],
)
def test_the_check_is_not_fooled_by_an_import_a_lookalike_or_a_silent_fake(fooled: str) -> None:
    assert broken_rules(fooled) != []


def test_a_fake_said_in_print_passes() -> None:
    script = COMPLIANT + (
        "from tests.support.memory_objects import InMemoryObjectStore\n"
        "print('S3 is an in-memory fake here: production does I/O')\n"
    )
    assert broken_rules(script) == []


def test_module_attribute_calls_count() -> None:
    script = (
        "import benchmarks.machine as m\nfrom benchmarks import measure\n"
        "print(m.machine())\nmeasure.cpu_snapshot()\nmeasure.spread([1.0])\n"
    )
    # `from benchmarks import measure` binds measure -> benchmarks.measure
    assert broken_rules(script) == []
