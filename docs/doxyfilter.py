#!/usr/bin/env python3
"""Doxygen input filter for core/include/mqlite.h.

The header keeps the house comment style (STYLE.md): one plain C comment
block per function, or per small group of functions, starting with
"name - summary". Doxygen only reads /** blocks, and attaches a block to one
declaration, so this filter gives every MQLITE_API declaration its own
/** copy of the block that documents it. The header itself is not changed.
"""
import re
import sys

DECL = re.compile(r"MQLITE_API\b[^;(]*?\b(mqlite_\w+)\s*\(")


def main(path):
    text = open(path, encoding="utf-8").read()
    out = []
    pos = 0
    last_block = None
    # Walk comment blocks and declarations in order.
    token = re.compile(r"/\*.*?\*/|MQLITE_API\b[^;]*;", re.S)
    for m in token.finditer(text):
        chunk = m.group(0)
        out.append(text[pos:m.start()])
        pos = m.end()
        if chunk.startswith("/*"):
            body = chunk[2:-2]
            if re.match(r"\s*\n?\s*\*?\s*mqlite_\w+ - ", body):
                last_block = body
                continue  # re-emitted before each declaration it documents
            # Trailing comments on #define lines document the macro.
            line_start = text.rfind("\n", 0, m.start()) + 1
            if text[line_start:m.start()].lstrip().startswith("#define"):
                out.append("/**<" + body + "*/")
            else:
                out.append(chunk)
            continue
        name = DECL.search(chunk)
        if last_block is not None and name:
            doc = re.sub(r"\n\s*\* ?", "\n", last_block).strip().replace("*/", "* /")
            brief, _, rest = doc.partition("\n")
            brief = re.sub(r"([\\@<>#%&])", r"\\\1", brief)
            block = "/** " + brief + "\n"
            if rest.strip():
                block += "\\verbatim\n" + rest + "\n\\endverbatim\n"
            out.append(block + " */\n")
        out.append(chunk)
    out.append(text[pos:])
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
