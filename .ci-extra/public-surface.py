#!/usr/bin/env python3
"""Lists the public surface of a crate from its rustdoc JSON: one line per
public path (`kind path`), as a user of the crate can name it.

    cargo +nightly rustdoc -p lwmq --lib --features serde,tokio -Z unstable-options --output-format json
    .ci-extra/public-surface.py target/doc/lwmq.json > docs/public-api/lwmq.txt
    .ci-extra/public-surface.py target/doc/lwmq.json --check docs/public-api/lwmq.txt

Walks from the crate root through modules and re-exports (a re-export
lists the item under the path it is re-exported at; an item reachable by
two paths is listed twice), and lists, under each type, its public fields,
variants, inherent methods and associated constants, and under each trait
its items. Trait implementations are not listed. `#[doc(hidden)]` items
are not in the JSON unless rustdoc is asked for them, so they are not
listed (lwmq's `internals` module is also behind a cargo feature).
"""
import json
import sys


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    doc = json.load(open(args[0]))
    index = doc["index"]
    lines = set()
    seen_modules = set()

    def kind_of(item):
        return next(iter(item["inner"]))

    def emit(item_id, path):
        item = index.get(str(item_id))
        if item is None:
            # An item of another crate, re-exported.
            lines.add(f"use {'::'.join(path)}")
            return
        kind = kind_of(item)
        name = "::".join(path)
        lines.add(f"{kind} {name}")
        inner = item["inner"][kind]
        if kind == "module":
            if item_id in seen_modules:
                return
            seen_modules.add(item_id)
            walk(inner["items"], path)
        elif kind in ("struct", "enum", "union"):
            if kind == "struct":
                fields = inner.get("kind", {})
                plain = fields.get("plain") if isinstance(fields, dict) else None
                for f in (plain or {}).get("fields", []):
                    fi = index.get(str(f))
                    if fi is not None:
                        lines.add(f"field {name}::{fi['name']}")
            if kind == "enum":
                for v in inner.get("variants", []):
                    vi = index.get(str(v))
                    if vi is not None:
                        lines.add(f"variant {name}::{vi['name']}")
            for impl_id in inner.get("impls", []):
                imp = index.get(str(impl_id))
                if imp is None:
                    continue
                i = imp["inner"]["impl"]
                if i.get("trait") is not None or i.get("blanket_impl") is not None:
                    continue
                for m in i.get("items", []):
                    mi = index.get(str(m))
                    if mi is not None and mi.get("visibility") == "public":
                        lines.add(f"{kind_of(mi)} {name}::{mi['name']}")
        elif kind == "trait":
            for m in inner.get("items", []):
                mi = index.get(str(m))
                if mi is not None:
                    lines.add(f"{kind_of(mi)} {name}::{mi['name']}")

    def walk(item_ids, path):
        for item_id in item_ids:
            item = index.get(str(item_id))
            if item is None:
                continue
            if kind_of(item) == "use":
                u = item["inner"]["use"]
                target = u.get("id")
                if u.get("is_glob"):
                    t = index.get(str(target)) if target is not None else None
                    if t is not None and kind_of(t) == "module":
                        walk(t["inner"]["module"]["items"], path)
                    continue
                if target is not None:
                    emit(target, path + [u["name"]])
                else:
                    lines.add(f"use {'::'.join(path + [u['name']])}")
            else:
                emit(item_id, path + [item["name"]])

    root = index[str(doc["root"])]
    walk(root["inner"]["module"]["items"], [root["name"]])
    listing = "\n".join(sorted(lines)) + "\n"
    if len(args) >= 3 and args[1] == "--check":
        committed = open(args[2]).read()
        if committed != listing:
            sys.stdout.write(listing)
            sys.exit(f"public surface differs from {args[2]} (regenerate it and review the change)")
        return
    sys.stdout.write(listing)


main()
