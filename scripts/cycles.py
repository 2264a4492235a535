#!/usr/bin/env python3
"""Rough module-cycle finder for a Rust crate: python3 cycles.py src/lib.rs
Maps every file to its module path, collects `crate::a::b` and `super::x` references (in non-test
code), resolves each to the longest existing module, and prints the strongly connected components
with more than one module (each is a cycle), plus their edges. Edges between a module and its own
ancestors or descendants are not counted (ownership, not layering).

With `--known FILE`, cycles listed there (each line: the modules of one cycle) are reported but
do not fail; a new cycle, or a known one that grew, fails (exit 1)."""
import os, re, sys
from collections import defaultdict

args = sys.argv[1:]
known_file = None
if "--known" in args:
    i = args.index("--known")
    known_file = args[i + 1]
    del args[i : i + 2]
root_file = args[0] if args else "src/lib.rs"
src = os.path.dirname(root_file)
mods = {}  # module path tuple -> file
for dp, _, fs in os.walk(src):
    for f in fs:
        if not f.endswith(".rs"):
            continue
        p = os.path.join(dp, f)
        rel = os.path.relpath(p, src)[:-3].split(os.sep)
        if rel == [os.path.basename(root_file)[:-3]]:
            key = ()
        elif rel[-1] == "mod":
            key = tuple(rel[:-1])
        else:
            key = tuple(rel)
        if rel == ["main"]:
            continue
        mods[key] = p

def strip_tests(text):
    # drop `#[cfg(test)] mod x { ... }` blocks (by brace matching)
    out, i = [], 0
    for m in re.finditer(r'#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{', text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {'{': 1, '}': -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    text = "".join(out)
    text = re.sub(r'//[^\n]*', '', text)
    return text

def resolve(path):
    path = tuple(path)
    while path and path not in mods:
        path = path[:-1]
    return path

def related(a, b):
    """A module and its ancestors or descendants: a parent declares and re-exports its children
    and they use what it shares; that is ownership, not a dependency between layers."""
    return a[: len(b)] == b or b[: len(a)] == a

edges = defaultdict(set)
for key, p in mods.items():
    text = strip_tests(open(p, encoding="utf-8").read())
    # expand `use crate::a::{b, c::d}` one level
    for m in re.finditer(r'crate((?:::\w+)+)(::\{([^}]*)\})?', text):
        base = m.group(1).split("::")[1:]
        targets = [base]
        if m.group(3):
            for part in m.group(3).split(","):
                part = part.strip().split(" as ")[0]
                if part and part != "self":
                    targets.append(base + [x for x in part.split("::") if x and x != "{"])
        for t in targets:
            r = resolve(t)
            if related(r, key):
                continue
            edges[key].add(r)
    for m in re.finditer(r'((?:super::)+)(\w+(?:::\w+)*)', text):
        # `super` is the parent of the module the file is (a/b.rs is a::b, a/mod.rs is a).
        ups = m.group(1).count("super::")
        base = list(key[: len(key) - ups])
        t = base + m.group(2).split("::")
        r = resolve(t)
        if related(r, key):
            continue
        edges[key].add(r)

# Tarjan
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        sccs.append(comp)
for v in list(mods):
    if v not in index:
        strong(v)
name = lambda k: "::".join(k) or "crate"
# a parent module that only declares/re-exports its children is not a cycle with them:
# ignore edges from a module to its own ancestors' re-exports? keep it simple: report all.
bad = [c for c in sccs if len(c) > 1]
# Cycles known when this check came in (one per line: modules separated by spaces): each is to be
# broken, none may grow, and no new one may appear.
known = []
if known_file:
    for line in open(known_file, encoding="utf-8"):
        line = line.split("#")[0].strip()
        if line:
            known.append(set(line.split()))
new_or_grown = []
for c in bad:
    names = {name(k) for k in c}
    if any(names <= k for k in known):
        print(f"known cycle (to be broken): {', '.join(sorted(names))}")
    else:
        new_or_grown.append(c)
here = {name(m) for m in mods}
for k in known:
    if k <= here and not any({name(x) for x in c} & k for c in bad):
        print(f"a known cycle is gone, remove it from {known_file}: {' '.join(sorted(k))}")
bad = new_or_grown
for c in bad:
    cs = set(c)
    print(f"cycle of {len(c)} modules: " + ", ".join(sorted(name(k) for k in c)))
    for k in sorted(c):
        for w in sorted(edges[k] & cs):
            print(f"    {name(k)} -> {name(w)}")
sys.exit(1 if bad else 0)
