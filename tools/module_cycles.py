#!/usr/bin/env python3
"""Module dependency cycles inside one crate: exit 1 and name them if any.

Usage: python3 tools/module_cycles.py crates/lstmrt/src crates/kernels/src ...

A module is a file (`foo.rs`, or `foo/mod.rs` for `foo`); `foo/bar.rs` is the
module `foo` here (its children are its own business). An edge A -> B is any
`crate::B` path in A's file, in `use` lines and in code alike, comments
excluded; `#[cfg(test)]` modules in separate files (`tests.rs`) are left out,
since tests may use anything. Plain Python, no packages: .ci/run runs it.
"""
import re
import sys
from pathlib import Path


def modules(src: Path) -> dict[str, str]:
    """Top-level module name -> its source text (children folded in)."""
    out: dict[str, str] = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src)
        if rel.name == "tests.rs":
            continue
        top = rel.parts[0].removesuffix(".rs")
        if top in ("lib", "main"):
            continue
        text = re.sub(r"//[^\n]*", "", f.read_text())
        out[top] = out.get(top, "") + text
    return out


def edges(mods: dict[str, str]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, text in mods.items():
        # `use crate::{a, b::c}` and `crate::a::x` paths
        for group in re.findall(r"crate::\{([^}]*)\}", text):
            for name in re.findall(r"(?:^|,)\s*(\w+)", group):
                if name in mods and name != m:
                    graph[m].add(name)
        for name in re.findall(r"crate::(\w+)", text):
            if name in mods and name != m:
                graph[m].add(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    bad = 0
    for arg in sys.argv[1:]:
        graph = edges(modules(Path(arg)))
        for comp in cycles(graph):
            bad += 1
            links = [f"{a} -> {b}" for a in comp for b in sorted(graph[a]) if b in comp]
            print(f"{arg}: modules {', '.join(comp)} form a cycle ({'; '.join(links)})")
    if not bad:
        print(f"no module cycles in {', '.join(sys.argv[1:])}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
