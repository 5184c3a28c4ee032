#!/usr/bin/env python3
"""check_pharo.py - prove what can be proven about the Pharo binding without a Pharo VM.

Reads every Tonel file under bindings/pharo/src and core/include/mqlite.h, and
checks:

  ffi-spec        every `ffiCall:` argument is a literal UFFI spec that parses the way
                  UFFI's FFIFunctionParser parses it (#( RET name ( ARGS ) ), or the
                  string form);
  ffi-function    the function it names is a public function of mqlite.h;
  ffi-arg-count   it passes as many arguments as the C declaration has;
  ffi-type        each argument type is compatible with the C parameter type
  ffi-return      and the return type with the C return type (TYPE TABLE below);
  ffi-argname     every argument name is a method argument, an instance/class variable
                  or `self`, and every argument of a binding method reaches C;
  ffi-library     the class side making the call answers #ffiLibrary (MQLiteLibrary), or
                  is the instance side of an FFILibrary subclass;
  ffi-protocol    binding methods are in the 'private - ffi' protocol and their
  ffi-naming      selector starts with the C function's name;
  blocking        no function that blocks is bound (mqlite_*_run, mqlite_*_wait*), and
                  every call of a binding whose C function takes a `timeout_ms` passes a
                  literal 0 (a UFFI call blocks the whole VM: zero-timeout polls only);
  coverage        every public function is bound, or listed in bindings/pharo/UNBOUND.md
                  with a reason; UNBOUND.md lists only real, unbound functions;
  constants       the SharedPool MQLiteConstants holds every integer MQLITE_* constant of
                  the header, with the header's value;
  syntax          every method body parses as Pharo Smalltalk;
  shadow          no temporary or argument hides another variable;
  undeclared      every variable is declared (temporaries, arguments, instance/class/pool
                  variables, classes of the sources, or known Pharo globals), and no
                  argument is assigned to;
  selector        messages sent to self, super, or a class of the sources are
                  implemented (in the sources, or by the known Pharo superclass);
  example         the Playground scripts of examples/pharo pass the same syntax,
                  undeclared and selector checks (a Playground sees no pool variables,
                  so MQLITE_* constants are undeclared there).

Exit status 0 when there is no error, 1 otherwise (2: the inputs cannot be read).
`--json` prints a machine-readable report instead of the text summary.

TYPE TABLE (C type -> UFFI spellings accepted; `const` is ignored on both sides;
UFFI aliases are resolved first: int = int32, uint = uint32, longlong = int64, ...):

  void (return)              void
  int32_t                    int32  (alias: int, signedLong)
  int64_t                    int64  (alias: longlong)
  uint16_t                   uint16 (alias: ushort, unsignedShort)
  uint32_t                   uint32 (alias: uint, unsignedLong)
  uint64_t                   uint64 (alias: ulonglong)
  size_t                     size_t
  const char *               String, char *, void *   (void *: a NUL-terminated ByteArray,
                                                        or ExternalAddress null)
  const void * / void *      void *, ByteArray, ExternalAddress
  T * (out: int32_t *, ...)  T *, void *               (a ByteArray buffer: FFIInt32 newBuffer)
  const char **              char **, void **, void *  (a pointer-sized ByteArray)
  mqlite_X * (a handle)      MQLiteXHandle *, self (in MQLiteXHandle), void *
  const mqlite_event *       void *                    (a borrowed ExternalAddress)
  mqlite_realloc_fn          void *                    (never bound: UNBOUND.md)

Never compatible: long / ulong (platform-sized), bool, char (by value), float, double,
a signed type for an unsigned one or the other way round, a handle class without `*`
(UFFI raises FFIDereferencedOpaqueObjectError), the wrong handle class.
Constants: an Integer only for integer parameters; nil / NULL only for pointers;
true / false never (the ABI has no bool).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_HEADER = ROOT / "core" / "include" / "mqlite.h"
DEFAULT_SRC = ROOT / "bindings" / "pharo" / "src"
DEFAULT_UNBOUND = ROOT / "bindings" / "pharo" / "UNBOUND.md"
DEFAULT_EXAMPLES = ROOT / "examples" / "pharo"

FFI_PROTOCOL = "private - ffi"
CONSTANTS_POOL = "MQLiteConstants"
LIBRARY_CLASS = "MQLiteLibrary"

# C struct -> the FFIOpaqueObject subclass that stands for a pointer to it.
HANDLE_CLASSES = {
    "mqlite_client": "MQLiteClientHandle",
    "mqlite_broker": "MQLiteBrokerHandle",
    "mqlite_packet": "MQLitePacketHandle",
    "mqlite_props": "MQLitePropsHandle",
}
# Opaque C types bound as a plain void * (no handle class).
VOID_POINTER_STRUCTS = {"mqlite_event", "mqlite_auth_request"}
FUNCTION_POINTER_TYPES = {"mqlite_realloc_fn"}
# Functions that wait inside C: binding one would let Pharo freeze the whole VM.
BLOCKING_FUNCTION = re.compile(r"^mqlite_\w+_run$|_wait(?:_\w+)?$")
TIMEOUT_PARAMETER = "timeout_ms"

# UFFI's own type aliases (FFICallout class>>initializeTypeAliases), resolved to a
# canonical name; None = a type the mqlite ABI never uses (always an error).
UFFI_TYPES = {
    "void": "void", "bool": None,
    "int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16",
    "int32": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64",
    "signedByte": "int8", "unsignedByte": "uint8", "signedShort": "int16",
    "unsignedShort": "uint16", "signedChar": "int8", "unsignedChar": "uint8",
    "schar": "int8", "uchar": "uint8", "signedLong": "int32", "unsignedLong": "uint32",
    "sbyte": "int8", "byte": "uint8", "short": "int16", "ushort": "uint16",
    "long": None, "ulong": None, "longlong": "int64", "ulonglong": "uint64",
    "uint": "uint32", "int": "int32", "size_t": "size_t",
    "Character": "char", "char": "char",
    "float16": None, "float32": None, "float64": None, "float128": None,
    "float": None, "double": None, "shortFloat": None,
    "oop": "oop", "ByteArray": "oop", "ExternalAddress": "oop",
    "String": "String",
}
WHY_NOT = {
    "long": "long is platform-sized (32 bits on Windows, 64 on Unix); use int32/int64",
    "ulong": "ulong is platform-sized; use uint32/uint64",
    "bool": "the mqlite ABI has no bool; use int32",
}
C_SCALARS = {"int8_t": "int8", "uint8_t": "uint8", "int16_t": "int16", "uint16_t": "uint16",
             "int32_t": "int32", "uint32_t": "uint32", "int64_t": "int64",
             "uint64_t": "uint64", "size_t": "size_t", "char": "char", "void": "void"}

# Pharo globals the sources may name (beyond their own classes).
PHARO_GLOBALS = {
    "Smalltalk", "Processor", "Transcript", "Object", "Error", "Exception", "TestCase",
    "BaselineOf", "SharedPool", "Delay", "SharedQueue", "Mutex", "Semaphore", "ByteArray",
    "String", "Symbol", "Character", "Array", "OrderedCollection", "Dictionary", "Set",
    "Time", "DateAndTime", "Duration", "Random", "FileReference", "FileLocator",
    "ExternalAddress", "ExternalData", "FFIExternalType", "FFIInt32", "FFISizeT",
    "FFILibrary", "FFIOpaqueObject", "FFIExternalReference", "FFIExternalObject",
    "FFIExternalResourceManager", "FFIMethodRegistry", "OSEnvironment", "LibC",
    "FFIUnix64LibraryFinder", "FFIUnix32LibraryFinder", "FFIMacLibraryFinder",
    "FFIWindowsLibraryFinder", "Stdio",
}

# What the Pharo superclasses of the sources' classes implement (only what the sources
# may send to self/super/a class; a send of anything else to them is reported).
_OBJECT_I = {
    "=", "==", "~=", "~~", "hash", "class", "yourself", "printOn:", "printString",
    "displayString", "initialize", "error:", "subclassResponsibility", "shouldNotImplement",
    "isNil", "notNil", "ifNil:", "ifNotNil:", "ifNil:ifNotNil:", "ifNotNil:ifNil:",
    "assert:", "assert:description:", "halt", "inspect", "traceCr", "ffiCall:",
    "ffiCall:options:", "ffiCall:module:", "ffiCall:module:options:", "ffiLibrary",
    "ffiLibraryName", "respondsTo:", "isKindOf:", "isMemberOf:", "->", "copy",
    "postCopy", "isString", "asString",
}
_OBJECT_C = {
    "new", "basicNew", "new:", "name", "subclassResponsibility", "initialize", "==", "=",
    "~~", "~=", "ffiCall:", "ffiCall:options:", "ffiCall:module:", "ffiLibrary", "isAbstract",
    "allInstances", "instanceCount", "printString", "yourself", "class", "error:",
}
EXTERNAL_CLASSES = {
    # name: (superclass, instance selectors, class selectors, instance variables)
    "Object": (None, _OBJECT_I, _OBJECT_C, set()),
    "ExternalObject": ("Object", {"isNull", "getHandle", "setHandle:", "handle"},
                       set(), {"handle"}),
    "FFIExternalReference": ("ExternalObject", {"autoRelease", "resourceData",
                                                "createDefaultHandle"},
                             {"fromHandle:", "newPointer", "finalizeResourceData:"}, set()),
    "FFIOpaqueObject": ("FFIExternalReference", {"newBuffer"},
                        {"newBuffer", "newValueHolder", "asExternalTypeOn:"}, set()),
    "FFILibrary": ("Object", {"macLibraryName", "unixLibraryName", "unix32LibraryName",
                              "unix64LibraryName", "win32LibraryName", "win64LibraryName",
                              "moduleName", "ffiLibraryName", "uniqueInstance", "options",
                              "calloutAPIClass"},
                   {"uniqueInstance", "asFFILibrary", "options", "calloutAPIClass"}, set()),
    "Exception": ("Object", {"signal", "signal:", "messageText", "messageText:",
                             "description", "return:", "return", "pass", "retry", "resume",
                             "resume:", "signalerContext", "outer", "resignalAs:"},
                  {"signal", "signal:", "new"}, {"messageText"}),
    "Error": ("Exception", set(), set(), set()),
    "TestCase": ("Object", {"assert:", "assert:equals:", "assert:description:", "deny:",
                            "deny:equals:", "deny:description:", "should:raise:",
                            "should:raise:withExceptionDo:", "shouldnt:raise:", "fail",
                            "fail:", "setUp", "tearDown", "skip", "skip:", "selector",
                            "assertCollection:hasSameElements:", "executeShould:inScopeOf:"},
                 {"isAbstract", "buildSuite", "suite", "allTestSelectors",
                  "testSelectors"}, set()),
    "BaselineOf": ("Object", {"baseline:", "project", "versions"}, set(), set()),
    "SharedPool": ("Object", set(), set(), set()),
}

RESERVED = {"self", "super", "nil", "true", "false", "thisContext"}


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

@dataclass
class Problem:
    kind: str
    where: str
    message: str

    def text(self) -> str:
        return f"{self.where}: [{self.kind}] {self.message}"


@dataclass
class Report:
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    def error(self, kind, where, message):
        self.errors.append(Problem(kind, where, message))

    def warn(self, kind, where, message):
        self.warnings.append(Problem(kind, where, message))


# ---------------------------------------------------------------------------
# The C header
# ---------------------------------------------------------------------------

@dataclass
class CType:
    base: str        # int32_t, char, void, mqlite_client, mqlite_realloc_fn, ...
    stars: int
    spelling: str

    def __str__(self):
        return self.spelling


@dataclass
class CFunction:
    name: str
    ret: CType
    params: list     # [(CType, name)]
    line: int


DECL = re.compile(r"MQLITE_API\s+([^;{}]*?)\b(mqlite_\w+)\s*\(([^;{}]*?)\)\s*;", re.S)
DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(MQLITE_[A-Z0-9_]+)[ \t]+"
                    r"(-?(?:0[xX][0-9A-Fa-f]+|\d+)|\"[^\"\n]*\")", re.M)


def strip_c_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def parse_ctype(decl: str, with_name: bool) -> tuple[CType, str | None]:
    spelling = " ".join(decl.replace("*", " * ").split())
    tokens = spelling.split()
    name = None
    if with_name and tokens and re.fullmatch(r"[A-Za-z_]\w*", tokens[-1]) and len(tokens) > 1 \
            and tokens[-1] not in C_SCALARS and tokens[-2] != "struct":
        name = tokens.pop()
    stars = tokens.count("*")
    words = [t for t in tokens if t not in ("*", "const", "volatile", "restrict", "struct")]
    if len(words) != 1:
        raise ValueError(f"cannot read C type {decl.strip()!r}")
    shown = " ".join(tokens).replace(" *", "*").replace("*", " *").replace("* *", "**")
    return CType(words[0], stars, shown.strip()), name


def parse_header(path: pathlib.Path, report: Report):
    raw = path.read_text(encoding="utf-8")
    # Comments and preprocessor lines (`#define MQLITE_API ...`) out, line count kept.
    text = re.sub(r"^[ \t]*#[^\n]*(?:\\\n[^\n]*)*", lambda m: re.sub(r"[^\n]", " ", m.group(0)),
                  strip_c_comments(raw), flags=re.M)
    functions = {}
    for m in DECL.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        name = m.group(2)
        where = f"{path.name}:{line}"
        try:
            ret, _ = parse_ctype(m.group(1), with_name=False)
            params = []
            plist = " ".join(m.group(3).split())
            if plist not in ("", "void"):
                for p in plist.split(","):
                    if "..." in p:
                        raise ValueError("varargs")
                    ct, pname = parse_ctype(p, with_name=True)
                    params.append((ct, pname or f"arg{len(params) + 1}"))
        except ValueError as e:
            report.error("header", where, f"{name}: {e}")
            continue
        if name in functions:
            report.error("header", where, f"{name} declared twice")
        functions[name] = CFunction(name, ret, params, line)
    constants = {}
    for name, value in DEFINE.findall(raw):
        constants[name] = value[1:-1] if value.startswith('"') else int(value, 0)
    return functions, constants


# ---------------------------------------------------------------------------
# Smalltalk tokens
# ---------------------------------------------------------------------------

BINARY_CHARS = set("+-*/\\<>=~@%&?,")


class SyntaxErr(Exception):
    def __init__(self, message, pos):
        super().__init__(message)
        self.pos = pos


@dataclass
class Tok:
    kind: str    # ident keyword binary assign number string symbol char
    #              litarray bytearray ( ) [ ] { } . ; ^ | blockarg eof
    value: object
    pos: int
    end: int


NUMBER = re.compile(r"(\d+)r(-?[0-9A-Z]+)|\d+(\.\d+)?(e-?\d+)?(s\d*)?")


def tokenize(src: str, start: int = 0, stop: int | None = None) -> list[Tok]:
    """Tokens of Smalltalk code; literal arrays come back whole as 'litarray' tokens."""
    stop = len(src) if stop is None else stop
    toks = []
    i = start
    while True:
        tok, i = next_token(src, i, stop)
        toks.append(tok)
        if tok.kind == "eof":
            return toks


def skip_space(src, i, stop):
    while i < stop:
        c = src[i]
        if c.isspace():
            i += 1
        elif c == '"':
            j = i + 1
            while True:
                j = src.find('"', j, stop)
                if j < 0:
                    raise SyntaxErr("unterminated comment", i)
                if j + 1 < stop and src[j + 1] == '"':
                    j += 2
                    continue
                break
            i = j + 1
        else:
            break
    return i


def read_string(src, i, stop):
    """src[i] == "'": answer (value, index after)."""
    out = []
    j = i + 1
    while True:
        if j >= stop:
            raise SyntaxErr("unterminated string", i)
        c = src[j]
        if c == "'":
            if j + 1 < stop and src[j + 1] == "'":
                out.append("'")
                j += 2
                continue
            return "".join(out), j + 1
        out.append(c)
        j += 1


def next_token(src, i, stop):
    i = skip_space(src, i, stop)
    if i >= stop:
        return Tok("eof", None, i, i), i
    c = src[i]
    if c.isalpha() or c == "_":
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(src, i, stop)
        j = m.end()
        word = m.group(0)
        if j < stop and src[j] == ":" and not (j + 1 < stop and src[j + 1] == "="):
            return Tok("keyword", word + ":", i, j + 1), j + 1
        return Tok("ident", word, i, j), j
    if c.isdigit():
        m = NUMBER.match(src, i, stop)
        text = m.group(0)
        if m.group(1):
            value = int(m.group(2), int(m.group(1)))
        elif m.group(3) or m.group(4) or m.group(5):
            value = float(re.sub(r"s\d*$", "", text))
        else:
            value = int(text)
        return Tok("number", value, i, m.end()), m.end()
    if c == "'":
        value, j = read_string(src, i, stop)
        return Tok("string", value, i, j), j
    if c == "$":
        if i + 1 >= stop:
            raise SyntaxErr("character literal at end of code", i)
        return Tok("char", src[i + 1], i, i + 2), i + 2
    if c == "#":
        if i + 1 < stop and src[i + 1] == "(":
            value, j = read_literal_array(src, i + 2, stop, i)
            return Tok("litarray", value, i, j), j
        if i + 1 < stop and src[i + 1] == "[":
            value, j = read_byte_array(src, i + 2, stop, i)
            return Tok("bytearray", value, i, j), j
        if i + 1 < stop and src[i + 1] == "'":
            value, j = read_string(src, i + 1, stop)
            return Tok("symbol", value, i, j), j
        m = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*:)+|[A-Za-z_][A-Za-z0-9_]*|[-+*/\\<>=~@%&?,|]+") \
            .match(src, i + 1, stop)
        if not m:
            raise SyntaxErr("bad symbol literal", i)
        return Tok("symbol", m.group(0), i, m.end()), m.end()
    if c == ":":
        if i + 1 < stop and src[i + 1] == "=":
            return Tok("assign", ":=", i, i + 2), i + 2
        m = re.compile(r":[ \t]*([A-Za-z_][A-Za-z0-9_]*)").match(src, i, stop)
        if m:
            return Tok("blockarg", m.group(1), i, m.end()), m.end()
        raise SyntaxErr("stray ':'", i)
    if c in "()[]{}.;^":
        return Tok(c, c, i, i + 1), i + 1
    if c == "|":
        return Tok("|", "|", i, i + 1), i + 1
    if c in BINARY_CHARS:
        j = i
        while j < stop and src[j] in BINARY_CHARS:
            j += 1
        return Tok("binary", src[i:j], i, j), j
    raise SyntaxErr(f"unexpected character {c!r}", i)


# Literal arrays as UFFI sees them: Python lists of atoms.
#   ("sym", "int32")  ("int", 5)  ("nil",)  ("true",)  ("false",)  ("str", "..")
#   ("char", "c")  ("float", 1.5)  ("bytes", [..])  nested lists

SYMBOL_WORD = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*:)+|[A-Za-z_][A-Za-z0-9_]*")


def read_literal_array(src, i, stop, opened_at):
    items = []
    while True:
        i = skip_space(src, i, stop)
        if i >= stop:
            raise SyntaxErr("unterminated literal array", opened_at)
        c = src[i]
        if c == ")":
            return items, i + 1
        if c == "(":
            sub, i = read_literal_array(src, i + 1, stop, i)
            items.append(sub)
            continue
        if c == "[":
            sub, i = read_byte_array(src, i + 1, stop, i)
            items.append(("bytes", sub))
            continue
        if c == "#" and i + 1 < stop and src[i + 1] == "(":
            sub, i = read_literal_array(src, i + 2, stop, i)
            items.append(sub)
            continue
        if c == "#" and i + 1 < stop and src[i + 1] == "[":
            sub, i = read_byte_array(src, i + 2, stop, i)
            items.append(("bytes", sub))
            continue
        if c == "-" and i + 1 < stop and src[i + 1].isdigit():
            tok, j = next_token(src, i + 1, stop)
            items.append(("int" if isinstance(tok.value, int) else "float", -tok.value))
            i = j
            continue
        if c.isalpha() or c == "_":
            m = SYMBOL_WORD.match(src, i, stop)
            word = m.group(0)
            if word in ("nil", "true", "false"):
                items.append((word,))
            else:
                items.append(("sym", word))
            i = m.end()
            continue
        if c in BINARY_CHARS or c == "|":
            j = i
            while j < stop and (src[j] in BINARY_CHARS or src[j] == "|"):
                j += 1
            items.append(("sym", src[i:j]))
            i = j
            continue
        tok, j = next_token(src, i, stop)
        if tok.kind == "number":
            items.append(("int" if isinstance(tok.value, int) else "float", tok.value))
        elif tok.kind == "string":
            items.append(("str", tok.value))
        elif tok.kind == "symbol":
            items.append(("sym", tok.value))
        elif tok.kind == "char":
            items.append(("char", tok.value))
        elif tok.kind == "litarray":
            items.append(tok.value)
        else:
            raise SyntaxErr(f"unexpected {tok.value!r} in a literal array", i)
        i = j


def read_byte_array(src, i, stop, opened_at):
    values = []
    while True:
        i = skip_space(src, i, stop)
        if i >= stop:
            raise SyntaxErr("unterminated byte array", opened_at)
        if src[i] == "]":
            return values, i + 1
        tok, j = next_token(src, i, stop)
        if tok.kind != "number" or not isinstance(tok.value, int) or not 0 <= tok.value <= 255:
            raise SyntaxErr("a byte array holds integers 0..255", i)
        values.append(tok.value)
        i = j


# ---------------------------------------------------------------------------
# Tonel files
# ---------------------------------------------------------------------------

@dataclass
class ClassDef:
    name: str
    superclass: str | None
    kind: str                       # Class, Extension
    inst_vars: list
    class_vars: list
    class_inst_vars: list
    pools: list
    category: str
    comment: str
    file: pathlib.Path
    line: int


@dataclass
class Method:
    cls: str
    side: str                       # instance / class
    selector: str
    args: list
    category: str
    body: str
    body_start: int                 # offset of the body in the file text
    file: pathlib.Path
    text: str                       # the whole file
    line: int

    @property
    def where(self):
        side = " class" if self.side == "class" else ""
        return f"{self.file.name}:{self.line} {self.cls}{side}>>{self.selector}"

    def where_at(self, offset):
        line = self.text.count("\n", 0, self.body_start + offset) + 1
        side = " class" if self.side == "class" else ""
        return f"{self.file.name}:{line} {self.cls}{side}>>{self.selector}"


STON_KEY = re.compile(r"#(\w+)\s*:\s*")


def parse_ston_map(text, where, report):
    """The { #key : value, ... } of a Tonel class definition -> dict of str / list."""
    out = {}
    i = 0
    n = len(text)
    while True:
        m = STON_KEY.search(text, i)
        if not m:
            return out
        key = m.group(1)
        j = m.end()
        if j < n and text[j] == "[":
            k = text.index("]", j)
            items = re.findall(r"#'([^']*)'|#(\w+)|'((?:[^']|'')*)'", text[j + 1:k])
            out[key] = [a or b or c.replace("''", "'") for a, b, c in items]
            i = k + 1
        else:
            mv = re.compile(r"#'((?:[^']|'')*)'|#(\w+)|'((?:[^']|'')*)'|(\w+)").match(text, j)
            if not mv:
                report.error("syntax", where, f"cannot read the value of #{key}")
                return out
            out[key] = next(g for g in mv.groups() if g is not None).replace("''", "'")
            i = mv.end()


def find_matching(text, i, open_c, close_c, what):
    """text[i] == open_c: the index of the matching close_c, skipping Smalltalk strings,
    comments and character literals."""
    depth = 0
    j = i
    n = len(text)
    while j < n:
        c = text[j]
        if c == "'":
            _, j = read_string(text, j, n)
            continue
        if c == '"':
            j = skip_space(text, j, n)
            continue
        if c == "$":
            j += 2
            continue
        if c == open_c:
            depth += 1
        elif c == close_c:
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise SyntaxErr(f"no closing {close_c!r} for {what}", i)


HEADER = re.compile(r"([A-Za-z_]\w*)(\s+class)?\s*>>\s*")


def parse_selector_pattern(pattern):
    """'at: a put: b' -> ('at:put:', ['a', 'b']); 'foo' -> ('foo', []); '= x' -> ('=', ['x'])."""
    p = pattern.strip()
    if re.fullmatch(r"[A-Za-z_]\w*", p):
        return p, []
    m = re.fullmatch(r"([-+*/\\<>=~@%&?,|]+)\s*([A-Za-z_]\w*)", p)
    if m:
        return m.group(1), [m.group(2)]
    parts = re.findall(r"([A-Za-z_]\w*:)\s*([A-Za-z_]\w*)", p)
    if parts and re.fullmatch(r"(?:\s*[A-Za-z_]\w*:\s*[A-Za-z_]\w*)+\s*", p):
        return "".join(k for k, _ in parts), [a for _, a in parts]
    return None, None


def parse_tonel_file(path: pathlib.Path, report: Report):
    text = path.read_text(encoding="utf-8")
    rel = path.name
    classes, methods = [], []
    try:
        i = skip_space(text, 0, len(text))
        m = re.match(r'\s*"((?:[^"]|"")*)"', text)
        comment = m.group(1).replace('""', '"') if m else ""
        m = re.compile(r"(Class|Extension|Trait|Package)\s*\{").match(text, i)
        if not m:
            report.error("syntax", f"{rel}:1", "expected a Tonel `Class {`, `Extension {` or "
                                                "`Package {` definition")
            return classes, methods
        kind = m.group(1)
        close = find_matching(text, m.end() - 1, "{", "}", f"the {kind} definition")
        line = text.count("\n", 0, m.start()) + 1
        defn = parse_ston_map(text[m.end():close], f"{rel}:{line}", report)
        if kind == "Package":
            return classes, methods
        name = defn.get("name")
        if not name:
            report.error("syntax", f"{rel}:{line}", f"{kind} definition without #name")
            return classes, methods
        expected = f"{name}.{'class' if kind == 'Class' else kind.lower()}.st"
        if path.name != expected:
            report.error("syntax", f"{rel}:{line}", f"{kind} {name} must live in {expected}")
        classes.append(ClassDef(
            name=name, superclass=defn.get("superclass"), kind=kind,
            inst_vars=defn.get("instVars", []), class_vars=defn.get("classVars", []),
            class_inst_vars=defn.get("classInstVars", []), pools=defn.get("pools", []),
            category=defn.get("category", defn.get("package", "")), comment=comment,
            file=path, line=line))
        i = close + 1
        while True:
            i = skip_space(text, i, len(text))
            if i >= len(text):
                break
            mline = text.count("\n", 0, i) + 1
            where = f"{rel}:{mline}"
            category = ""
            if text[i] == "{":
                mclose = find_matching(text, i, "{", "}", "method metadata")
                meta = parse_ston_map(text[i + 1:mclose], where, report)
                category = meta.get("category", "")
                i = skip_space(text, mclose + 1, len(text))
                mline = text.count("\n", 0, i) + 1
                where = f"{rel}:{mline}"
            hm = HEADER.match(text, i)
            if not hm:
                report.error("syntax", where, "expected `Class >> selector [` here")
                break
            bracket = text.find("[", hm.end())
            if bracket < 0:
                report.error("syntax", where, "method without a body `[ ... ]`")
                break
            selector, args = parse_selector_pattern(text[hm.end():bracket])
            if selector is None:
                report.error("syntax", where, f"cannot read the selector "
                                              f"{text[hm.end():bracket].strip()!r}")
                break
            if hm.group(1) != name:
                report.error("syntax", where, f"method of {hm.group(1)} in the file of {name}")
            end = find_matching(text, bracket, "[", "]", f"the body of {selector}")
            methods.append(Method(
                cls=name, side="class" if hm.group(2) else "instance", selector=selector,
                args=args, category=category, body=text[bracket + 1:end],
                body_start=bracket + 1, file=path, text=text, line=mline))
            i = end + 1
    except SyntaxErr as e:
        line = text.count("\n", 0, e.pos) + 1
        report.error("syntax", f"{rel}:{line}", str(e))
    return classes, methods


# ---------------------------------------------------------------------------
# Smalltalk method bodies: parser, scopes, sends, ffiCall: specs
# ---------------------------------------------------------------------------

@dataclass
class Send:
    receiver: str          # self / super / global:Name / other
    selector: str
    pos: int


@dataclass
class FfiCall:
    spec: object           # the literal array (list), a string, or None (not literal)
    pos: int
    selector: str


class BodyParser:
    """Recursive descent over a method body; records variable uses, sends and ffiCalls."""

    def __init__(self, toks, outer=()):
        self.toks = toks
        self.outer = set(outer)   # instance / class / pool variables of the class
        self.shadows = []         # (name, pos): a temporary or argument hiding another name
        self.i = 0
        self.uses = []        # (name, pos, is_assignment, scope-chain snapshot)
        self.sends = []
        self.keyword_sends = []   # (selector, [argument token slices], pos): every receiver
        self.ffi_calls = []
        self.scopes = []      # list of (set of names, set of read-only names)
        self.pragmas = []

    # helpers
    def peek(self, k=0):
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self, kind=None, value=None):
        t = self.peek()
        if kind and t.kind != kind or value is not None and t.value != value:
            want = value if value is not None else kind
            got = t.value if t.kind != "eof" else "end of method"
            raise SyntaxErr(f"expected {want!r}, found {got!r}", t.pos)
        self.i += 1
        return t

    def declared(self, name):
        return any(name in names for names, _ in self.scopes)

    def use(self, name, pos, assign=False):
        self.uses.append((name, pos, assign, [(set(a), set(b)) for a, b in self.scopes]))

    # grammar
    def declare(self, name, pos):
        if name in self.outer or self.declared(name):
            self.shadows.append((name, pos))

    def method(self, args):
        for a in args:
            if a in self.outer:
                self.shadows.append((a, 0))
        self.scopes.append((set(args), set(args)))
        self.pragma_list()
        self.temporaries()
        self.pragma_list()
        self.statements(end_kinds=("eof",))
        self.take("eof")

    def pragma_list(self):
        while self.peek().kind == "binary" and self.peek().value == "<":
            self.take()
            if self.peek().kind == "ident":
                self.pragmas.append(self.take().value)
            else:
                sel = ""
                while self.peek().kind == "keyword":
                    sel += self.take().value
                    self.literal_or_ident()
                if not sel:
                    raise SyntaxErr("bad pragma", self.peek().pos)
                self.pragmas.append(sel)
            t = self.take("binary")
            if t.value != ">":
                raise SyntaxErr("pragma not closed by '>'", t.pos)

    def literal_or_ident(self):
        t = self.peek()
        if t.kind in ("number", "string", "symbol", "char", "litarray", "bytearray", "ident"):
            self.i += 1
            return t
        raise SyntaxErr("pragma argument must be a literal", t.pos)

    def temporaries(self):
        names = set()
        if self.peek().kind == "|":
            self.take("|")
            while self.peek().kind == "ident":
                t = self.take()
                if t.value in RESERVED:
                    raise SyntaxErr(f"{t.value} cannot be a temporary", t.pos)
                if t.value in names:
                    raise SyntaxErr(f"temporary {t.value} declared twice", t.pos)
                self.declare(t.value, t.pos)
                names.add(t.value)
            self.take("|")
        self.scopes[-1][0].update(names)

    def statements(self, end_kinds):
        while True:
            while self.peek().kind == ".":
                self.take(".")
            if self.peek().kind in end_kinds:
                return
            if self.peek().kind == "^":
                self.take("^")
                self.expression()
                while self.peek().kind == ".":
                    self.take(".")
                if self.peek().kind not in end_kinds:
                    raise SyntaxErr("statement after a return", self.peek().pos)
                return
            self.expression()
            if self.peek().kind == ".":
                continue
            if self.peek().kind in end_kinds:
                return
            t = self.peek()
            raise SyntaxErr(f"expected '.' or the end, found {t.value!r}", t.pos)

    def expression(self):
        t = self.peek()
        if t.kind == "ident" and self.peek(1).kind == "assign":
            self.take()
            self.take("assign")
            if t.value in RESERVED:
                raise SyntaxErr(f"cannot assign to {t.value}", t.pos)
            self.use(t.value, t.pos, assign=True)
            return self.expression()
        return self.cascade()

    def cascade(self):
        recv = self.primary()
        last_recv = recv
        recv_desc, last_recv = self.messages(recv, first=True)
        while self.peek().kind == ";":
            self.take(";")
            if last_recv is None:
                raise SyntaxErr("cascade without a message", self.peek().pos)
            self.messages(last_recv, first=False, cascade=True)
        return recv_desc

    def messages(self, recv, first, cascade=False):
        """Unary* binary* keyword? on recv. Answers (result descriptor, receiver of the
        last message)."""
        cur = recv
        last_recv = None
        sent = False
        while self.peek().kind == "ident":
            t = self.take()
            self.record(cur, t.value, t.pos)
            last_recv, cur, sent = cur, "other", True
        while self.peek().kind in ("binary", "|"):
            t = self.take()
            arg = self.primary()
            while self.peek().kind == "ident":
                u = self.take()
                self.record(arg, u.value, u.pos)
                arg = "other"
            self.record(cur, t.value, t.pos)
            last_recv, cur, sent = cur, "other", True
        if self.peek().kind == "keyword":
            sel = ""
            pos = self.peek().pos
            first_arg = None
            slices = []
            while self.peek().kind == "keyword":
                k = self.take()
                sel += k.value
                arg_start = self.i
                self.binary_operand()
                slices.append(self.toks[arg_start:self.i])
                if first_arg is None:
                    first_arg = self.toks[arg_start:self.i]
            self.record(cur, sel, pos)
            self.keyword_sends.append((sel, slices, pos))
            if sel.startswith("ffiCall:"):
                self.ffi_calls.append(FfiCall(literal_spec(first_arg), pos, sel))
            last_recv, cur, sent = cur, "other", True
        if cascade and not sent:
            raise SyntaxErr("empty cascade part", self.peek().pos)
        return cur, last_recv

    def binary_operand(self):
        arg = self.primary()
        while self.peek().kind == "ident":
            u = self.take()
            self.record(arg, u.value, u.pos)
            arg = "other"
        while self.peek().kind in ("binary", "|"):
            t = self.take()
            a2 = self.primary()
            while self.peek().kind == "ident":
                u = self.take()
                self.record(a2, u.value, u.pos)
                a2 = "other"
            self.record(arg, t.value, t.pos)
            arg = "other"

    def record(self, recv, selector, pos):
        if recv in ("self", "super") or recv.startswith("global:"):
            self.sends.append(Send(recv, selector, pos))

    def primary(self):
        t = self.peek()
        k = t.kind
        if k == "ident":
            self.take()
            if t.value in ("self", "super"):
                return t.value
            if t.value in ("nil", "true", "false", "thisContext"):
                return "other"
            self.use(t.value, t.pos)
            if t.value[0].isupper() and not self.declared(t.value):
                return "global:" + t.value
            return "other"
        if k in ("number", "string", "symbol", "char", "litarray", "bytearray"):
            self.take()
            return "other"
        if k == "binary" and t.value == "-" and self.peek(1).kind == "number" \
                and self.peek(1).pos == t.end:
            self.take()
            self.take()
            return "other"
        if k == "(":
            self.take("(")
            d = self.expression()
            self.take(")")
            return d
        if k == "[":
            self.block()
            return "other"
        if k == "{":
            self.take("{")
            self.scopes.append((set(), set()))
            self.statements(end_kinds=("}",))
            self.scopes.pop()
            self.take("}")
            return "other"
        got = t.value if k != "eof" else "end of method"
        raise SyntaxErr(f"expected an expression, found {got!r}", t.pos)

    def block(self):
        self.take("[")
        args = []
        while self.peek().kind == "blockarg":
            t = self.take()
            if t.value in RESERVED or t.value in args:
                raise SyntaxErr(f"bad block argument {t.value}", t.pos)
            self.declare(t.value, t.pos)
            args.append(t.value)
        if args:
            if self.peek().kind == "|":
                self.take("|")
            elif self.peek().kind == "binary" and self.peek().value == "||":
                pass
            elif self.peek().kind != "]":
                raise SyntaxErr("block arguments must be followed by '|'", self.peek().pos)
        self.scopes.append((set(args), set(args)))
        self.temporaries()
        self.statements(end_kinds=("]",))
        self.scopes.pop()
        self.take("]")


def literal_spec(tokens):
    """The first argument of ffiCall: -> a literal array (list), a string, or None."""
    if tokens and len(tokens) == 1:
        t = tokens[0]
        if t.kind == "litarray":
            return t.value
        if t.kind == "string":
            return t.value
    return None


# ---------------------------------------------------------------------------
# UFFI function specs (FFIFunctionParser>>parseNamedFunction:)
# ---------------------------------------------------------------------------

@dataclass
class UArg:
    kind: str             # var / self / const / cast
    type: tuple | None    # (typeName, arity) or None
    name: str | None = None
    value: object = None


@dataclass
class USpec:
    ret: tuple
    function: str
    args: list


def show_atom(a):
    if isinstance(a, list):
        return "(" + " ".join(show_atom(x) for x in a) + ")"
    if a[0] in ("nil", "true", "false"):
        return a[0]
    if a[0] == "str":
        return repr(a[1])
    return str(a[1])


def is_stars(a):
    return isinstance(a, tuple) and a[0] == "sym" and re.fullmatch(r"\*+", a[1])


def parse_type(items, k, what):
    if k >= len(items) or not (isinstance(items[k], tuple) and items[k][0] == "sym"):
        raise ValueError(f"{what}: type name expected")
    name = items[k][1]
    k += 1
    if name == "const":
        if k >= len(items) or not (isinstance(items[k], tuple) and items[k][0] == "sym"):
            raise ValueError(f"{what}: type name expected after const")
        name = items[k][1]
        k += 1
    if "*" in name:
        # `void*` is scanned by Pharo as #void #*, never as one symbol; a symbol with
        # a star inside comes from #'void*' or the string form and is not what UFFI reads.
        raise ValueError(f"{what}: {name!r} is not a type name")
    arity = 0
    while k < len(items) and is_stars(items[k]):
        arity += len(items[k][1])
        k += 1
    if k < len(items) and isinstance(items[k], tuple) and items[k][0] == "sym" \
            and "*" in items[k][1] and "," in items[k][1]:
        raise ValueError(f"{what}: {items[k][1]!r} glues '*' and ',' into one symbol")
    return (name, arity), k


def parse_spec(spec):
    if isinstance(spec, str):
        spec, end = read_literal_array("#(" + spec + ")", 2, len(spec) + 3, 0)
    if not isinstance(spec, list) or len(spec) < 2:
        raise ValueError("expected #( RET name ( ARGS ) )")
    if not isinstance(spec[-1], list):
        raise ValueError("the last element must be the argument list ( ... )")
    head = spec[:-1]
    ret, k = parse_type(head, 0, "return")
    if k >= len(head) or not (isinstance(head[k], tuple) and head[k][0] == "sym"):
        raise ValueError("function name expected")
    fname = head[k][1]
    if not re.fullmatch(r"[A-Za-z_]\w*", fname):
        raise ValueError(f"bad function name {fname!r}")
    if k + 1 != len(head):
        raise ValueError(f"unexpected {show_atom(head[k + 1])} after the function name")
    groups = [[]]
    for a in spec[-1]:
        if isinstance(a, tuple) and a[0] == "sym" and a[1] == ",":
            groups.append([])
        elif isinstance(a, tuple) and a[0] == "sym" and "," in a[1]:
            raise ValueError(f"{a[1]!r}: ',' glued to another symbol")
        else:
            groups[-1].append(a)
    if groups == [[]]:
        groups = []
    args = []
    for n, g in enumerate(groups, 1):
        what = f"argument {n}"
        if not g:
            raise ValueError(f"{what} is empty")
        if len(g) == 1 and not (isinstance(g[0], tuple) and g[0] == ("sym", "void")):
            a = g[0]
            if isinstance(a, list):
                raise ValueError(f"{what}: a cast without a value")
            if a[0] == "sym" and a[1] == "self":
                args.append(UArg("self", None, "self"))
            elif a[0] == "sym" and a[1] == "NULL" or a[0] == "nil":
                args.append(UArg("const", None, value=None))
            elif a[0] == "int":
                args.append(UArg("const", None, value=a[1]))
            elif a[0] in ("true", "false"):
                args.append(UArg("const", None, value=a[0]))
            elif a[0] == "sym":
                raise ValueError(f"{what}: untyped name {a[1]!r} (UFFI passes it as a "
                                 f"Symbol literal); write `type {a[1]}`")
            else:
                raise ValueError(f"{what}: unsupported constant {show_atom(a)}")
            continue
        if isinstance(g[0], list):
            cast, kk = parse_type(g[0], 0, what + " cast")
            if kk != len(g[0]) or len(g) != 2:
                raise ValueError(f"{what}: expected (type) value")
            v = g[1]
            if isinstance(v, tuple) and v[0] == "int":
                args.append(UArg("cast", cast, value=v[1]))
            elif isinstance(v, tuple) and (v[0] == "nil" or v == ("sym", "NULL")):
                args.append(UArg("cast", cast, value=None))
            else:
                raise ValueError(f"{what}: cast of {show_atom(v)}")
            continue
        t, kk = parse_type(g, 0, what)
        if t == ("void", 0) and kk == len(g):
            if len(groups) != 1:
                raise ValueError(f"{what}: `void` is only allowed as the sole argument")
            continue
        if kk >= len(g):
            raise ValueError(f"{what}: argument name missing after the type")
        a = g[kk]
        if kk + 1 != len(g):
            raise ValueError(f"{what}: unexpected {show_atom(g[kk + 1])} (indirect @ "
                             f"arguments and the like are not used here)")
        if isinstance(a, tuple) and a[0] == "sym" and re.fullmatch(r"[A-Za-z_]\w*", a[1]):
            args.append(UArg("self" if a[1] == "self" else "var", t, a[1]))
        elif isinstance(a, tuple) and a[0] == "int":
            args.append(UArg("cast", t, value=a[1]))
        elif isinstance(a, tuple) and (a[0] == "nil" or a == ("sym", "NULL")):
            args.append(UArg("cast", t, value=None))
        else:
            raise ValueError(f"{what}: bad argument name {show_atom(a)}")
    return USpec(ret, fname, args)


# ---------------------------------------------------------------------------
# Type compatibility
# ---------------------------------------------------------------------------

def c_kinds(ct: CType, is_return: bool):
    """The canonical UFFI kinds a C type accepts (see TYPE TABLE)."""
    b, s = ct.base, ct.stars
    if b in FUNCTION_POINTER_TYPES and s == 0:
        return {("ptr", "void")}
    if s == 0:
        if b == "void":
            return {("void",)} if is_return else set()
        if b in C_SCALARS:
            return {("scalar", C_SCALARS[b])}
        return set()
    if s == 1:
        if b == "char":
            return {("string",), ("ptr", "char"), ("ptr", "void")}
        if b == "void":
            return {("ptr", "void")}
        if b in HANDLE_CLASSES:
            return {("handle", b), ("ptr", "void")}
        if b in VOID_POINTER_STRUCTS:
            return {("ptr", "void")}
        if b in C_SCALARS:
            return {("ptr", C_SCALARS[b]), ("ptr", "void")}
        return {("ptr", "void")}
    if s == 2:
        target = C_SCALARS.get(b, b)
        return {("ptr2", target), ("ptr2", "void"), ("ptr", "void")}
    return {("ptr", "void")}


def u_kind(t, handle_of_class):
    """(typeName, arity) of a UFFI spec -> canonical kind, or raises ValueError."""
    name, arity = t
    if name in handle_of_class:
        struct = handle_of_class[name]
        if arity == 0:
            raise ValueError(f"{name} without '*': UFFI signals FFIDereferencedOpaqueObjectError "
                             f"(an opaque object is always passed by reference: `{name} *`)")
        if struct is None:
            raise ValueError(f"{name} is an abstract handle class; name the concrete one")
        return ("handle", struct) if arity == 1 else ("ptr2", struct)
    if name not in UFFI_TYPES:
        raise ValueError(f"unknown UFFI type {name!r}")
    canon = UFFI_TYPES[name]
    if canon is None:
        raise ValueError(f"UFFI type {name!r}: " + WHY_NOT.get(name, "not used by the mqlite ABI"))
    if canon == "oop":
        return ("ptr", "void") if arity == 0 else ("ptr2", "void")
    if canon == "String":
        return ("string",) if arity == 0 else ("ptr2", "char")
    if arity == 0:
        if canon == "void":
            return ("void",)
        if canon == "char":
            raise ValueError("char by value is not used by the mqlite ABI")
        return ("scalar", canon)
    if arity == 1:
        return ("ptr", canon)
    if arity == 2:
        return ("ptr2", canon)
    raise ValueError(f"{name} with {arity} '*': not used by the mqlite ABI")


def show_kind(k):
    if k[0] == "scalar":
        return k[1]
    if k[0] == "ptr":
        return f"{k[1]} *"
    if k[0] == "ptr2":
        return f"{k[1]} **"
    if k[0] == "handle":
        return f"{HANDLE_CLASSES.get(k[1], k[1])} *"
    return k[0]


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------

class Model:
    def __init__(self, classes, methods):
        self.classes = {}
        self.extensions = []
        for c in classes:
            if c.kind == "Class":
                self.classes[c.name] = c
            else:
                self.extensions.append(c)
        self.methods = methods
        self.by_class = {}
        for m in methods:
            self.by_class.setdefault((m.cls, m.side), {})[m.selector] = m

    def chain(self, name):
        """[name, superclass, ...] through the sources, then the known Pharo classes."""
        out = []
        seen = set()
        cur = name
        while cur and cur not in seen:
            seen.add(cur)
            out.append(cur)
            if cur in self.classes:
                cur = self.classes[cur].superclass
            elif cur in EXTERNAL_CLASSES:
                cur = EXTERNAL_CLASSES[cur][0]
            else:
                out.append("?")       # an unknown Pharo class: stop checking there
                break
        return out

    def inherits(self, name, ancestor):
        return ancestor in self.chain(name)

    def implements(self, cls, side, selector):
        chain = self.chain(cls)
        if "?" in chain:
            return True
        for c in chain:
            if selector in self.by_class.get((c, side), {}):
                return True
            if c in EXTERNAL_CLASSES:
                sels = EXTERNAL_CLASSES[c][1 if side == "instance" else 2]
                if selector in sels:
                    return True
        if side == "class" and selector in _OBJECT_I:
            return True  # a class is an Object too
        return False

    def find_method(self, cls, side, selector):
        for c in self.chain(cls):
            m = self.by_class.get((c, side), {}).get(selector)
            if m:
                return m
        return None

    def variables(self, cls, side):
        """Names visible in methods of cls on side (besides temporaries and arguments)."""
        names = set()
        for c in self.chain(cls):
            d = self.classes.get(c)
            if d:
                if side == "instance":
                    names.update(d.inst_vars)
                else:
                    names.update(d.class_inst_vars)
                names.update(d.class_vars)
                for pool in d.pools:
                    pd = self.classes.get(pool)
                    if pd:
                        names.update(pd.class_vars)
            elif c in EXTERNAL_CLASSES and side == "instance":
                names.update(EXTERNAL_CLASSES[c][3])
        return names

    def handle_class_map(self):
        """handle class name -> C struct (None for abstract FFIOpaqueObject classes)."""
        wanted = {v: k for k, v in HANDLE_CLASSES.items()}
        out = {}
        for name in self.classes:
            chain = self.chain(name)
            if "FFIOpaqueObject" not in chain:
                continue
            struct = None
            for c in chain:
                if c in wanted:
                    struct = wanted[c]
                    break
            out[name] = struct
        return out


def check_classes(model: Model, report: Report):
    for name, c in model.classes.items():
        where = f"{c.file.name}:{c.line}"
        if not c.superclass:
            report.error("syntax", where, f"class {name} has no #superclass")
        elif c.superclass not in model.classes and c.superclass not in EXTERNAL_CLASSES \
                and c.superclass not in PHARO_GLOBALS:
            report.error("undeclared", where, f"superclass {c.superclass} of {name} is unknown")
        if not c.comment.strip():
            report.error("syntax", where, f"class {name} has no class comment")
        for pool in c.pools:
            if pool not in model.classes:
                report.error("undeclared", where, f"pool {pool} of {name} is not defined")
    for e in model.extensions:
        if e.name not in model.classes and e.name not in PHARO_GLOBALS:
            report.error("undeclared", f"{e.file.name}:{e.line}",
                         f"extension of unknown class {e.name}")
    for struct, cname in HANDLE_CLASSES.items():
        if cname not in model.classes:
            report.error("ffi-type", "sources", f"handle class {cname} (for {struct} *) "
                                                f"is not defined")
        elif not model.inherits(cname, "FFIOpaqueObject"):
            report.error("ffi-type", f"{model.classes[cname].file.name}",
                         f"{cname} must be an FFIOpaqueObject subclass")


def check_method_body(model: Model, m: Method, report: Report):
    """Parse a body; report syntax, undeclared variables and unknown sends. Answers the
    BodyParser (or None after a syntax error)."""
    visible = model.variables(m.cls, m.side)
    try:
        toks = tokenize(m.body)
        p = BodyParser(toks, visible)
        p.method(m.args)
    except SyntaxErr as e:
        report.error("syntax", m.where_at(e.pos), str(e))
        return None
    for name, pos in p.shadows:
        report.error("shadow", m.where_at(pos), f"{name} hides a variable of the same name "
                                                f"(the Pharo compiler refuses or warns)")
    globals_ = set(model.classes) | PHARO_GLOBALS
    for name, pos, assign, scopes in p.uses:
        declared = any(name in names for names, _ in scopes)
        if assign and any(name in ro for _, ro in scopes):
            report.error("undeclared", m.where_at(pos), f"assignment to argument {name}")
            continue
        if declared or name in visible:
            continue
        if name in globals_ and not assign:
            continue
        report.error("undeclared", m.where_at(pos), f"undeclared variable {name}")
    for s in p.sends:
        if s.receiver == "self":
            ok = model.implements(m.cls, m.side, s.selector)
            who = f"{m.cls}{' class' if m.side == 'class' else ''}"
        elif s.receiver == "super":
            sup = (model.classes.get(m.cls) or ClassDef(m.cls, None, "", [], [], [], [], "",
                                                        "", m.file, 0)).superclass
            ok = sup is None or model.implements(sup, m.side, s.selector)
            who = f"super of {m.cls}"
        else:
            cname = s.receiver.split(":", 1)[1]
            if cname not in model.classes:
                continue
            ok = model.implements(cname, "class", s.selector)
            who = f"{cname} class"
        if not ok:
            report.error("selector", m.where_at(s.pos), f"{who} does not implement #{s.selector}")
    return p


def check_example(model: Model, path: pathlib.Path, report: Report):
    """A Playground script: statements with their own temporaries, no receiver."""
    text = path.read_text(encoding="utf-8")
    pseudo = Method(cls="UndefinedObject", side="instance", selector="DoIt", args=[],
                    category="", body=text, body_start=0, file=path, text=text, line=1)
    sub = Report()
    parser = check_method_body(model, pseudo, sub)
    for e in sub.errors:
        where = e.where.replace(" UndefinedObject>>DoIt", "")
        report.error("example", where, f"{e.kind}: {e.message}")
    return None if parser is None else (pseudo, parser)


def check_timeouts(parsed, timeouts, report: Report):
    """Every call of a binding that passes a timeout to C passes the literal 0."""
    for selector, index, function, _ in timeouts:
        for m, parser in parsed:
            for sel, slices, pos in parser.keyword_sends:
                if sel != selector:
                    continue
                arg = slices[index]
                if len(arg) == 1 and arg[0].kind == "number" and arg[0].value == 0:
                    continue
                shown = m.body[arg[0].pos:arg[-1].end] if arg else "?"
                where = m.where_at(pos).replace(" UndefinedObject>>DoIt", "")
                report.error("blocking", where, f"#{selector} passes {shown!r} as the timeout of "
                                                f"{function}: only a literal 0 keeps the VM "
                                                f"running (wait with a Delay instead)")


def check_ffi_call(model, m, call, functions, handle_map, report, bound, timeouts):
    where = m.where_at(call.pos)
    if call.spec is None:
        report.error("ffi-spec", where, "the argument of ffiCall: must be a literal "
                                        "#( RET name ( ARGS ) ) (or its string form)")
        return
    try:
        spec = parse_spec(call.spec)
    except (ValueError, SyntaxErr) as e:
        report.error("ffi-spec", where, str(e))
        return
    fn = functions.get(spec.function)
    bound.setdefault(spec.function, []).append(where)
    if m.category != FFI_PROTOCOL:
        report.error("ffi-protocol", where, f"binding of {spec.function} must be in the "
                                            f"'{FFI_PROTOCOL}' protocol, not '{m.category}'")
    if not m.selector.startswith(spec.function):
        report.error("ffi-naming", where, f"the selector of a binding starts with the C name: "
                                          f"{spec.function}...")
    # ffiLibrary
    lib = model.find_method(m.cls, m.side, "ffiLibrary")
    if lib is None:
        if not (m.side == "instance" and model.inherits(m.cls, "FFILibrary")):
            report.error("ffi-library", where, f"{m.cls}{' class' if m.side == 'class' else ''} "
                                               f"does not answer #ffiLibrary")
    elif not re.search(r"\^\s*(" + LIBRARY_CLASS + r"|self)\b", lib.body):
        report.error("ffi-library", lib.where, f"#ffiLibrary must answer {LIBRARY_CLASS}")
    # argument names
    visible = model.variables(m.cls, m.side)
    used = set()
    for n, a in enumerate(spec.args, 1):
        if a.kind == "var":
            used.add(a.name)
            if a.name not in m.args and a.name not in visible:
                report.error("ffi-argname", where, f"argument {n}: {a.name!r} is neither a "
                                                   f"method argument nor a variable of {m.cls}")
    stripped = re.sub(r'"(?:[^"]|"")*"', "", m.body).strip()
    if stripped.startswith("^") and stripped.count("ffiCall:") == 1:
        for arg in m.args:
            if arg not in used:
                report.error("ffi-argname", where, f"method argument {arg!r} is never passed "
                                                   f"to {spec.function}")
    if fn is None:
        report.error("ffi-function", where, f"{spec.function} is not a public function of "
                                            f"mqlite.h")
        return
    if BLOCKING_FUNCTION.search(spec.function):
        report.error("blocking", where, f"{spec.function} waits inside C: a UFFI call to it "
                                        f"freezes the whole VM (list it in UNBOUND.md instead)")
    cargs = [p[0] for p in fn.params]
    sig = f"{fn.ret} {fn.name}(" + ", ".join(f"{t} {nm}" for t, nm in fn.params) + ")"
    for a, (ct, pname) in zip(spec.args, fn.params):
        if pname != TIMEOUT_PARAMETER:
            continue
        if a.kind == "var" and a.name in m.args:
            timeouts.append((m.selector, m.args.index(a.name), spec.function, where))
        elif a.kind in ("const", "cast") and a.value == 0:
            pass
        else:
            report.error("blocking", where, f"{spec.function}: {TIMEOUT_PARAMETER} must be a "
                                            f"method argument or the constant 0")
    if len(spec.args) != len(cargs):
        report.error("ffi-arg-count", where, f"{spec.function} takes {len(cargs)} argument(s), "
                                             f"the binding passes {len(spec.args)}: {sig}")
        return
    # return type
    try:
        rk = u_kind(spec.ret, handle_map)
        if rk not in c_kinds(fn.ret, is_return=True):
            report.error("ffi-return", where, f"{spec.function} returns {fn.ret}; "
                                              f"{show_kind(rk)} is not compatible")
    except ValueError as e:
        report.error("ffi-return", where, f"{spec.function}: return type: {e}")
    for n, (a, ct) in enumerate(zip(spec.args, cargs), 1):
        cname = fn.params[n - 1][1]
        ok_kinds = c_kinds(ct, is_return=False)
        label = f"{spec.function} argument {n} ({ct} {cname})"
        if a.kind == "self" and a.type is None:
            if m.side != "instance":
                report.error("ffi-type", where, f"{label}: `self` on the class side is a class, "
                                                f"not a handle")
                continue
            struct = handle_map.get(m.cls, "-")
            if struct == "-" or struct is None:
                report.error("ffi-type", where, f"{label}: `self` is a {m.cls}, not a handle "
                                                f"of a known type")
                continue
            k = ("handle", struct)
        elif a.kind == "const":
            v = a.value
            if v is None:
                if ct.stars == 0 and ct.base not in FUNCTION_POINTER_TYPES:
                    report.error("ffi-type", where, f"{label}: NULL for a non-pointer")
            elif v in ("true", "false"):
                report.error("ffi-type", where, f"{label}: {v} is passed as a bool; the mqlite "
                                                f"ABI has none")
            elif isinstance(v, int):
                if not any(k[0] == "scalar" for k in ok_kinds):
                    report.error("ffi-type", where, f"{label}: integer constant for a pointer")
            continue
        else:
            try:
                k = u_kind(a.type, handle_map)
            except ValueError as e:
                report.error("ffi-type", where, f"{label}: {e}")
                continue
            if a.kind == "cast" and a.value is None and k[0] == "scalar":
                report.error("ffi-type", where, f"{label}: NULL cast to a non-pointer")
                continue
        if k not in ok_kinds:
            want = " / ".join(sorted(show_kind(x) for x in ok_kinds)) or "nothing"
            report.error("ffi-type", where, f"{label}: {show_kind(k)} is not compatible "
                                            f"(accepted: {want})")


def read_unbound(path: pathlib.Path, report: Report):
    """`- mqlite_name: reason` (or with backquotes / an em dash) lines -> {name: reason}."""
    out = {}
    if not path.exists():
        return out
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = re.match(r"\s*[-*]\s+`?(mqlite_\w+)`?(?:\(\))?\s*(?:[:\u2014]|--|-)?\s*(.*)$", line)
        if not m:
            continue
        name, reason = m.group(1), m.group(2).strip()
        where = f"{path.name}:{n}"
        if name in out:
            report.error("coverage", where, f"{name} listed twice")
        if len(reason) < 10:
            report.error("coverage", where, f"{name} is listed without a reason")
        out[name] = (reason, where)
    return out


POOL_ASSIGNMENT = re.compile(r"\b(MQLITE_[A-Z0-9_]+)\s*:=\s*"
                             r"(-?\d+r-?[0-9A-Z]+|-?\d+|'(?:[^']|'')*')")


def check_constants(model: Model, constants: dict, report: Report):
    pool = model.classes.get(CONSTANTS_POOL)
    if pool is None:
        report.error("constants", "sources", f"the SharedPool {CONSTANTS_POOL} is not defined")
        return 0
    if not model.inherits(CONSTANTS_POOL, "SharedPool"):
        report.error("constants", pool.file.name, f"{CONSTANTS_POOL} must subclass SharedPool")
    values = {}
    for m in model.methods:
        if m.cls != CONSTANTS_POOL or m.side != "class":
            continue
        for am in POOL_ASSIGNMENT.finditer(m.body):
            name, lit = am.group(1), am.group(2)
            if lit.startswith("'"):
                val = lit[1:-1].replace("''", "'")
            elif "r" in lit:
                neg = lit.startswith("-")
                radix, digits = lit.lstrip("-").split("r", 1)
                val = int(digits, int(radix)) * (-1 if neg else 1)
            else:
                val = int(lit)
            if name in values:
                report.error("constants", m.where, f"{name} set twice")
            values[name] = (val, m)
    declared = set(pool.class_vars)
    for name, val in constants.items():
        if name not in values:
            report.error("constants", pool.file.name, f"{name} ({val!r}) of mqlite.h is "
                                                      f"missing from {CONSTANTS_POOL}")
        elif values[name][0] != val:
            report.error("constants", values[name][1].where, f"{name} is {values[name][0]!r} "
                                                             f"in Pharo, {val!r} in mqlite.h")
        if name not in declared:
            report.error("constants", pool.file.name, f"{name} is not a class variable of "
                                                      f"{CONSTANTS_POOL}")
    for name in values:
        if name not in constants:
            report.error("constants", values[name][1].where, f"{name} is not in mqlite.h")
    return len([n for n in constants if n in values and values[n][0] == constants[n]])


def run(header: pathlib.Path, src: pathlib.Path, unbound_path: pathlib.Path,
        examples: pathlib.Path | None = None):
    report = Report()
    functions, constants = parse_header(header, report)
    if not functions:
        report.error("header", str(header), "no MQLITE_API function found")
    files = sorted(p for p in src.rglob("*.st"))
    classes, methods = [], []
    for f in files:
        c, ms = parse_tonel_file(f, report)
        classes += c
        methods += ms
    for f in src.iterdir() if src.is_dir() else []:
        if f.is_dir() and not (f / "package.st").exists():
            report.error("syntax", f.name, "Tonel package directory without package.st")
    model = Model(classes, methods)
    check_classes(model, report)
    handle_map = model.handle_class_map()
    bound = {}
    timeouts = []     # (selector, keyword index of the timeout, C function, where bound)
    parsed = []
    for m in methods:
        parser = check_method_body(model, m, report)
        if parser is None:
            continue
        parsed.append((m, parser))
        for call in parser.ffi_calls:
            check_ffi_call(model, m, call, functions, handle_map, report, bound, timeouts)
    for name, wheres in bound.items():
        if len(wheres) > 1:
            report.warn("ffi-duplicate", wheres[1], f"{name} is bound {len(wheres)} times "
                                                    f"(also {wheres[0]})")
    unbound = read_unbound(unbound_path, report)
    for name, (reason, where) in unbound.items():
        if name not in functions:
            report.error("coverage", where, f"{name} is listed as unbound but is not in mqlite.h")
        elif name in bound:
            report.error("coverage", where, f"{name} is listed as unbound but is bound at "
                                            f"{bound[name][0]}")
    for name, fn in functions.items():
        if name not in bound and name not in unbound:
            report.error("coverage", f"{header.name}:{fn.line}",
                         f"{name} is neither bound nor listed in {unbound_path.name} with a reason")
    nconst = check_constants(model, constants, report)
    example_files = sorted(examples.glob("*.st")) if examples and examples.is_dir() else []
    for f in example_files:
        p = check_example(model, f, report)
        if p is not None:
            parsed.append(p)
    check_timeouts(parsed, timeouts, report)
    stats = {
        "examples": len(example_files),
        "functions": len(functions),
        "bound": sorted(n for n in bound if n in functions),
        "unbound": sorted(n for n in unbound if n in functions and n not in bound),
        "signatures": sum(len(w) for w in bound.values()),
        "classes": len(model.classes),
        "methods": len(methods),
        "files": len(files),
        "constants": len(constants),
        "constants_ok": nconst,
    }
    return report, stats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--header", type=pathlib.Path, default=DEFAULT_HEADER)
    ap.add_argument("--src", type=pathlib.Path, default=DEFAULT_SRC)
    ap.add_argument("--unbound", type=pathlib.Path, default=DEFAULT_UNBOUND)
    ap.add_argument("--examples", type=pathlib.Path, default=DEFAULT_EXAMPLES,
                    help="Playground scripts to check (a missing directory is skipped)")
    ap.add_argument("--json", action="store_true", help="print a JSON report")
    args = ap.parse_args(argv)
    for p in (args.header, args.src):
        if not p.exists():
            print(f"check_pharo: {p} not found", file=sys.stderr)
            return 2
    report, stats = run(args.header, args.src, args.unbound, args.examples)
    if args.json:
        print(json.dumps({
            "ok": not report.errors,
            "errors": [vars(e) for e in report.errors],
            "warnings": [vars(w) for w in report.warnings],
            **stats}, indent=2))
        return 1 if report.errors else 0
    for w in report.warnings:
        print("warning: " + w.text())
    for e in report.errors:
        print("error: " + e.text())
    print(f"check_pharo: {args.header.name}: {stats['functions']} public functions; "
          f"{args.src}: {stats['files']} Tonel files, {stats['classes']} classes, "
          f"{stats['methods']} methods")
    print(f"  bound:     {len(stats['bound'])} functions ({stats['signatures']} ffiCall: "
          f"signatures checked against the header)")
    print(f"  unbound:   {len(stats['unbound'])} functions, each with a reason in "
          f"{args.unbound.name}" + (f": {', '.join(stats['unbound'])}" if stats['unbound'] else ""))
    print(f"  constants: {stats['constants_ok']} of {stats['constants']} match the header")
    print(f"  examples:  {stats['examples']} Playground scripts parsed")
    print(f"  errors:    {len(report.errors)}" + (f", warnings: {len(report.warnings)}"
                                                   if report.warnings else ""))
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
