#!/usr/bin/env python3
"""Compares the schema migrations/sqlite builds with the one migrations/postgres built.

Usage: scripts/pg-schema-compare.py POSTGRES_URL   (a database migrated with migrations/postgres)

Applies migrations/sqlite/*.sql in order to an in-memory SQLite database, then compares, table by
table: columns (order, type, NOT NULL, default, primary key), unique keys, foreign keys, indexes
and triggers. Prints every difference and exits 1 if there is one that is not expected; the
expected ones (PostgreSQL's search column, its TRUNCATE guards, SQLite's FTS5 tables) are listed.
"""

import re
import sqlite3
import subprocess
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TYPES = {"INTEGER": "bigint", "TEXT": "text", "REAL": "double precision"}
# What PostgreSQL has and SQLite has not, on purpose.
PG_ONLY_COLUMNS = {("audit", "search")}
# The audit search's indexes for the environment with one other filter (SQLite narrows those
# through its FTS5 index instead).
PG_ONLY_INDEXES = {"audit_env_action", "audit_env_namespace", "audit_env_actor"}
PG_ONLY_TRIGGER = re.compile(r"_no_truncate$")
# SQLite's FTS5 index (a virtual table and its shadow tables) and the trigger that feeds it.
SQLITE_ONLY_TABLE = re.compile(r"^audit_search")
SQLITE_ONLY_TRIGGERS = {"audit_search_insert"}
# SQLite lets a non-INTEGER primary key column without NOT NULL hold NULL; PostgreSQL never does.
NULLABLE_SQLITE_KEYS = {("builtin_rollout_templates", "name")}
# CHECK constraints PostgreSQL adds (per table): users.disabled IN (0, 1).
PG_EXTRA_CHECKS = {"users": 1}


def sqlite_schema():
    db = sqlite3.connect(":memory:")
    db.execute("PRAGMA foreign_keys = ON")
    for path in sorted((ROOT / "migrations" / "sqlite").glob("*.sql")):
        db.executescript(path.read_text())
    tables = {}
    names = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name <> '_sqlx_migrations' ORDER BY name")]
    for t in names:
        if SQLITE_ONLY_TABLE.match(t):
            continue
        cols = []
        info = list(db.execute(f"PRAGMA table_info({t})"))
        rowid_key = [c[1] for c in info if c[5]] if sum(1 for c in info if c[5]) == 1 else []
        for _, name, decl, notnull, default, pk in info:
            never_null = bool(notnull) or (name in rowid_key and decl.upper() == "INTEGER")
            if (t, name) in NULLABLE_SQLITE_KEYS and not never_null:
                print(f"expected: {t}.{name} is a primary key that SQLite lets be NULL; PostgreSQL does not")
                never_null = True
            cols.append((name, TYPES.get(decl.upper(), decl), never_null, norm_default(default), pk > 0))
        uniques = set()
        indexes = set()
        for _, iname, unique, origin, partial in db.execute(f"PRAGMA index_list({t})"):
            icols = tuple(r[2] for r in db.execute(f"PRAGMA index_info({iname})"))
            if origin in ("u", "pk"):
                uniques.add(icols)
            else:
                indexes.add((iname, icols, bool(unique), bool(partial)))
        # An INTEGER PRIMARY KEY is the rowid: no index is listed for it.
        pk_cols = tuple(c[0] for c in cols if c[4])
        if pk_cols:
            uniques.add(pk_cols)
        fks = {}
        for fid, _, ref, frm, to, _, on_delete, _ in db.execute(f"PRAGMA foreign_key_list({t})"):
            f = fks.setdefault(fid, [ref, [], [], on_delete.lower()])
            f[1].append(frm)
            f[2].append(to)
        sql = db.execute("SELECT sql FROM sqlite_schema WHERE name = ?", (t,)).fetchone()[0]
        tables[t] = {
            "checks": len(re.findall(r"\bCHECK\s*\(", sql, re.IGNORECASE)),
            "columns": cols,
            "uniques": uniques,
            "indexes": indexes,
            "foreign keys": {(r, tuple(a), tuple(b), d) for r, a, b, d in fks.values()},
        }
    triggers = {(r[0], r[1]) for r in db.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type = 'trigger'")}
    return tables, triggers


def norm_default(default):
    """A default as a comparable word: now, a literal, or none."""
    if default is None:
        return None
    d = default.strip()
    while d.startswith("(") and d.endswith(")"):
        d = d[1:-1].strip()
    if "strftime" in d or "rfc3339_now()" in d:
        return "now"
    d = re.sub(r"::[a-z ]+$", "", d)  # PostgreSQL's casts of literals
    return d


def psql(url, sql):
    out = subprocess.run(["psql", url, "-X", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def pg_schema(url):
    tables = {}
    for (t,) in psql(url, "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname <> '_sqlx_migrations'"
                          " AND relnamespace = 'public'::regnamespace"):
        tables[t] = {"checks": -PG_EXTRA_CHECKS.get(t, 0), "columns": [], "uniques": set(), "indexes": set(),
                     "foreign keys": set()}
    for t, n in psql(url, """
        SELECT c.relname, count(*) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
         WHERE k.contype = 'c' AND c.relnamespace = 'public'::regnamespace GROUP BY c.relname"""):
        tables[t]["checks"] += int(n)
    for t, n in PG_EXTRA_CHECKS.items():
        print(f"expected: {t} has {n} CHECK constraint(s) more on PostgreSQL")
    rows = psql(url, """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity <> '',
               coalesce(a.attnum = ANY (k.conkey), false)
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid AND c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
                          AND c.relname <> '_sqlx_migrations'
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p'
         WHERE a.attnum > 0 AND NOT a.attisdropped
         ORDER BY c.relname, a.attnum""")
    for t, name, typ, notnull, default, identity, pk in rows:
        if (t, name) in PG_ONLY_COLUMNS:
            print(f"expected: {t}.{name} ({typ}) exists on PostgreSQL only")
            continue
        default = None if identity == "t" or default == "" else norm_default(default)
        tables[t]["columns"].append((name, typ, notnull == "t", default, pk == "t"))
    rows = psql(url, """
        SELECT t.relname, i.relname, x.indisunique, x.indpred IS NOT NULL,
               coalesce(con.contype, ''),
               (SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(x.indkey) WITH ORDINALITY AS k (attnum, n)
                  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum)
          FROM pg_index x
          JOIN pg_class i ON i.oid = x.indexrelid
          JOIN pg_class t ON t.oid = x.indrelid AND t.relnamespace = 'public'::regnamespace
                          AND t.relname <> '_sqlx_migrations'
          LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.contype IN ('p', 'u')""")
    for t, iname, unique, partial, contype, cols in rows:
        icols = tuple((cols or "").split(","))
        if contype:
            tables[t]["uniques"].add(icols)
        elif iname == "audit_search":
            print("expected: index audit_search (GIN on audit.search) exists on PostgreSQL only")
        elif iname in PG_ONLY_INDEXES:
            print(f"expected: index {iname} ({', '.join(icols)}) exists on PostgreSQL only")
        else:
            tables[t]["indexes"].add((iname, icols, unique == "t", partial == "t"))
    rows = psql(url, """
        SELECT c.relname, r.relname,
               (SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(f.conkey) WITH ORDINALITY AS k (attnum, n)
                  JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.attnum),
               (SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(f.confkey) WITH ORDINALITY AS k (attnum, n)
                  JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.attnum),
               CASE f.confdeltype WHEN 'c' THEN 'cascade' WHEN 'a' THEN 'no action'
                                  WHEN 'r' THEN 'restrict' WHEN 'n' THEN 'set null' ELSE 'set default' END
          FROM pg_constraint f
          JOIN pg_class c ON c.oid = f.conrelid
          JOIN pg_class r ON r.oid = f.confrelid
         WHERE f.contype = 'f' AND c.relnamespace = 'public'::regnamespace""")
    for t, ref, frm, to, on_delete in rows:
        tables[t]["foreign keys"].add((ref, tuple(frm.split(",")), tuple(to.split(",")), on_delete))
    triggers = set()
    for name, table in psql(url, """
        SELECT tgname, c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
         WHERE NOT g.tgisinternal AND c.relnamespace = 'public'::regnamespace"""):
        if PG_ONLY_TRIGGER.search(name):
            print(f"expected: trigger {name} on {table} exists on PostgreSQL only (TRUNCATE)")
            continue
        triggers.add((name, table))
    return tables, triggers


# Texts whose words FTS5 (unicode61) and audit_search_text must split and fold alike.
SAMPLES = [
    "payments/prod/db.url", "Rolled back the HOTFIX release", "feature-flags carol-ops",
    "alice@example.com", "v1.2.3 Release_Notes 3.14 -5", "https://x.org/a?b=1&c=%20",
    '{"message":"a \\"quoted\\" word","n":12.5,"list":[1,2]}', "tabs\tand\nnew lines",
    "Café ÉCOLE naïve Ångström", "cafe\u0301 e\u0308", "Ærøskøbing straße ſtop İstanbul",
    "日本語のテキスト", "Ελληνικά ΣΊΣΥΦΟΣ ς", "Привет, Мир!", "emoji 🚀 launch",
]


def fts5_words(texts):
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5 (x)")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance')")
    db.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", list(enumerate(texts)))
    words = [[] for _ in texts]
    for term, doc, _, offset in db.execute("SELECT term, doc, col, offset FROM v ORDER BY doc, offset"):
        words[doc].append(term)
    return words


def tokenizer_differences(url):
    """Where audit_search_text splits or folds otherwise than FTS5: the samples, and every code
    point of the BMP between two letters. The differences the migration names are expected: in
    the categories No, private use, unassigned, symbols, punctuation, format and combining marks,
    and letters newer than FTS5's Unicode tables."""
    texts = SAMPLES + [f"a{chr(cp)}b" for cp in range(0x80, 0x10000) if not 0xD800 <= cp < 0xE000]
    # COPY's text format: one text a line, with backslash, tab and line breaks escaped. The
    # answers hold only letters, digits and spaces.
    escaped = "\n".join(t.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
                         for t in texts)
    out = subprocess.run(
        ["psql", url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
         "-c", "CREATE TEMP TABLE texts (i serial, t text)",
         "-c", "COPY texts (t) FROM STDIN",
         "-c", "SELECT coalesce(audit_search_text(t), '') FROM texts ORDER BY i"],
        input=escaped + "\n", check=True, capture_output=True, text=True).stdout.splitlines()
    pg = [w.split(" ") if w else [] for w in out]
    differences, expected = [], {}
    for i, want in enumerate(fts5_words(texts)):
        if pg[i] == want:
            continue
        category = unicodedata.category(texts[i][1]) if i >= len(SAMPLES) else "sample"
        # FTS5's Unicode tables are older than the C library's: letters it leaves as they are or
        # takes for separators are ones those tables do not know (Cherokee capitals, New Tai Lue).
        unknown_letter = category[0] == "L" and want in ([texts[i]], ["a", "b"])
        if (category[0] in "NCSPM" and category != "Nd") or unknown_letter:
            expected[category] = expected.get(category, 0) + 1
        else:
            differences.append(f"{texts[i]!r}: FTS5 {want}, PostgreSQL {pg[i]}")
    print("expected: code points tokenized otherwise than FTS5, by category:",
          ", ".join(f"{c} {n}" for c, n in sorted(expected.items())))
    return differences[:20] + ([f"and {len(differences) - 20} more"] if len(differences) > 20 else [])


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    lite, lite_triggers = sqlite_schema()
    pg, pg_triggers = pg_schema(sys.argv[1])
    differences = []
    for t in sorted(set(lite) | set(pg)):
        if t not in pg or t not in lite:
            differences.append(f"table {t} exists on {'SQLite' if t in lite else 'PostgreSQL'} only")
            continue
        if lite[t]["checks"] != pg[t]["checks"]:
            differences.append(f"{t}: {lite[t]['checks']} CHECK constraints on SQLite, {pg[t]['checks']} on PostgreSQL")
        for aspect in ("columns", "uniques", "indexes", "foreign keys"):
            a, b = lite[t][aspect], pg[t][aspect]
            if a != b:
                if aspect == "columns":
                    a, b = set(a), set(b)
                    if a == b:
                        differences.append(f"{t}: the columns' order differs")
                        continue
                differences.append(f"{t} {aspect}: SQLite only {sorted(a - b)}; PostgreSQL only {sorted(b - a)}")
    for name, table in sorted(lite_triggers ^ pg_triggers):
        if name in SQLITE_ONLY_TRIGGERS:
            print(f"expected: trigger {name} on {table} exists on SQLite only (FTS5)")
            continue
        side = "SQLite" if (name, table) in lite_triggers else "PostgreSQL"
        differences.append(f"trigger {name} on {table} exists on {side} only")
    for d in tokenizer_differences(sys.argv[1]):
        differences.append(f"the audit search splits a text otherwise: {d}")
    print(f"compared {len(lite)} tables, {sum(len(t['columns']) for t in lite.values())} columns, "
          f"{len(lite_triggers)} SQLite triggers")
    for d in differences:
        print("DIFFERENT:", d)
    if differences:
        sys.exit(1)
    print("the schemas match")


if __name__ == "__main__":
    main()
