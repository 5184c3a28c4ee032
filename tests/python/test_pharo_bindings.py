"""The Pharo binding (bindings/pharo) checked without a Pharo VM.

tests/ffi/check_pharo.py parses every Tonel file, every ffiCall: signature and
core/include/mqlite.h, and fails on any mismatch. These tests run it on the real
binding (it must pass) and on broken copies (it must fail, with exactly the
errors planted), so a checker that silently accepts everything cannot pass.
"""
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECKER = ROOT / "tests" / "ffi" / "check_pharo.py"
SRC = ROOT / "bindings" / "pharo" / "src"
UNBOUND = ROOT / "bindings" / "pharo" / "UNBOUND.md"
HEADER = ROOT / "core" / "include" / "mqlite.h"
EXAMPLES = ROOT / "examples" / "pharo"


def run_checker(*args):
    return subprocess.run([sys.executable, str(CHECKER), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def run_json(src=SRC, unbound=UNBOUND, header=HEADER, examples=EXAMPLES):
    r = run_checker("--src", src, "--unbound", unbound, "--header", header,
                    "--examples", examples, "--json")
    assert r.stderr == "", r.stderr
    return r.returncode, json.loads(r.stdout)


@pytest.fixture
def copy(tmp_path):
    """A writable copy of the binding's sources, UNBOUND.md, the header and the examples."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    src = tmp_path / "src"
    shutil.copytree(SRC, src)
    unbound = tmp_path / "UNBOUND.md"
    shutil.copy(UNBOUND, unbound)
    header = tmp_path / "mqlite.h"
    shutil.copy(HEADER, header)
    return src, unbound, header


def test_checker_passes_on_the_binding():
    r = run_checker()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "errors:    0" in r.stdout
    code, report = run_json()
    assert code == 0 and report["ok"]
    # Everything in the header is accounted for, and most of it is bound.
    assert len(report["bound"]) + len(report["unbound"]) == report["functions"]
    assert len(report["bound"]) >= report["functions"] - 8
    # what would freeze the VM stays unbound
    assert "mqlite_broker_run" in report["unbound"]
    assert not [f for f in report["bound"] if f.endswith("_run") or "_wait" in f]
    assert report["constants_ok"] == report["constants"] > 200
    assert report["examples"] >= 4


BROKEN = """Extension { #name : #MQLiteClientHandle }

{ #category : #'private - ffi' }
MQLiteClientHandle >> mqlite_client_fd_with_extra: extra [
	"wrong argument count: mqlite_client_fd takes the client only"

	^ self ffiCall: #( int32 mqlite_client_fd ( self, int32 extra ) )
]

{ #category : #'private - ffi' }
MQLiteClientHandle >> mqlite_client_set_int_narrow: option value: value [
	"wrong type: the value is an int64_t"

	^ self ffiCall: #( int32 mqlite_client_set_int ( self, int32 option, int32 value ) )
]

{ #category : #'private - ffi' }
MQLiteClientHandle >> mqlite_client_frobnicate [
	"no such function in mqlite.h"

	^ self ffiCall: #( int32 mqlite_client_frobnicate ( self ) )
]
"""


def test_checker_rejects_a_broken_binding_with_exactly_the_planted_errors(copy):
    src, unbound, header = copy
    (src / "MQLite-Core" / "MQLiteClientHandle.extension.st").write_text(BROKEN)
    code, report = run_json(src, unbound, header)
    assert code == 1
    kinds = sorted(e["kind"] for e in report["errors"])
    assert kinds == ["ffi-arg-count", "ffi-function", "ffi-type"], report["errors"]
    text = " ".join(e["message"] for e in report["errors"])
    assert "mqlite_client_frobnicate" in text
    assert "mqlite_client_fd takes 1 argument(s), the binding passes 2" in text
    assert "int64_t value" in text
    # the plain-text mode fails the same way
    r = run_checker("--src", src, "--unbound", unbound, "--header", header)
    assert r.returncode == 1 and "errors:    3" in r.stdout


def mutate(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {path.name}"
    path.write_text(text.replace(old, new))


CORE = "MQLite-Core"
# (id, file relative to the copy (src/..., UNBOUND.md, mqlite.h), old, new, expected kinds;
#  a kind written "kind+" means one or more errors of that kind)
MUTATIONS = [
    ("unbound-and-unlisted", f"src/{CORE}/MQLiteClientHandle.class.st",
     "{ #category : #'private - ffi' }\nMQLiteClientHandle >> mqlite_client_fd [\n\n"
     "\t^ self ffiCall: #( int32 mqlite_client_fd ( self ) )\n]\n", "", ["coverage"]),
    ("constant-value", f"src/{CORE}/MQLiteConstants.class.st",
     "MQLITE_ERR_NOMEM := -1.", "MQLITE_ERR_NOMEM := -2.", ["constants"]),
    ("constant-missing", f"src/{CORE}/MQLiteConstants.class.st",
     "\tMQLITE_BSTAT_SUBSCRIPTIONS := 9.\n", "", ["constants"]),
    ("opaque-without-star", f"src/{CORE}/MQLiteLibrary.class.st",
     "MQLitePropsHandle *mqlite_event_props", "MQLitePropsHandle mqlite_event_props",
     ["ffi-return"]),
    ("platform-sized-long", f"src/{CORE}/MQLiteClientHandle.class.st",
     "#( int32 mqlite_client_fd ( self ) )", "#( long mqlite_client_fd ( self ) )",
     ["ffi-return"]),
    ("signedness", f"src/{CORE}/MQLiteClientHandle.class.st",
     "( self, int32 reason )", "( self, uint32 reason )", ["ffi-type"]),
    ("wrong-handle-class", f"src/{CORE}/MQLiteClientHandle.class.st",
     "MQLitePacketHandle *packet", "MQLitePropsHandle *packet", ["ffi-type"]),
    ("bytearray-for-size_t", f"src/{CORE}/MQLiteClientHandle.class.st",
     "( self, void *bytes, size_t len )", "( self, void *bytes, ByteArray len )", ["ffi-type"]),
    ("int-for-string", f"src/{CORE}/MQLiteLibrary.class.st",
     "( String filter, String topic )", "( String filter, int32 topic )", ["ffi-type"]),
    ("bool-constant", f"src/{CORE}/MQLiteClientHandle.class.st",
     "( self, int32 readable, int32 writable )", "( self, true, int32 writable )",
     ["ffi-type", "ffi-argname"]),
    ("argument-name-typo", f"src/{CORE}/MQLiteClientHandle.class.st",
     "( String clientId )", "( String clientID )", ["ffi-argname", "ffi-argname"]),
    ("not-literal", f"src/{CORE}/MQLiteBrokerHandle.class.st",
     "^ self ffiCall: #( int32 mqlite_broker_port ( self, int32 index ) )",
     "^ self ffiCall: (Array with: #int32)", ["ffi-spec", "coverage"]),
    ("protocol", f"src/{CORE}/MQLiteBrokerHandle.class.st",
     "{ #category : #'private - ffi' }\nMQLiteBrokerHandle >> mqlite_broker_stop [",
     "{ #category : #running }\nMQLiteBrokerHandle >> mqlite_broker_stop [", ["ffi-protocol"]),
    ("no-ffiLibrary", f"src/{CORE}/MQLiteHandle.class.st",
     "{ #category : #'library path' }\nMQLiteHandle class >> ffiLibrary [\n\n"
     "\t^ MQLiteLibrary\n]\n",
     "", ["ffi-library+"]),
    ("syntax", "src/MQLite-Client/MQLiteClient.class.st",
     "^ (aBooleanOrInteger == true or: [ aBooleanOrInteger = 1 ])",
     "^ (aBooleanOrInteger == true or: [ aBooleanOrInteger = 1 ]", ["syntax"]),
    ("undeclared-class", "src/MQLite-Client/MQLiteClient.class.st",
     "handle := MQLiteClientHandle newClientId: clientId.",
     "handle := MQLiteClientHandel newClientId: clientId.", ["undeclared"]),
    ("undeclared-ivar", "src/MQLite-Broker/MQLiteBroker.class.st",
     "pollInterval := milliseconds", "pollIntervall := milliseconds", ["undeclared"]),
    ("assign-to-argument", "src/MQLite-Broker/MQLiteBroker.class.st",
     "pollInterval := milliseconds", "milliseconds := pollInterval", ["undeclared"]),
    ("shadowed-variable", "src/MQLite-Broker/MQLiteBroker.class.st",
     "\t\t| rc |\n", "\t\t| rc port |\n", ["shadow"]),
    ("unknown-self-send", "src/MQLite-Client/MQLiteClient.class.st",
     "\t\tself applyOptions.", "\t\tself applyOption.", ["selector"]),
    ("unknown-class-send", "src/MQLite-Client/MQLiteClient.class.st",
     "MQLiteLibrary int32Buffer.\n\tprops :=", "MQLiteLibrary int32Buffr.\n\tprops :=",
     ["selector"]),
    ("example-uses-a-pool-constant", "examples/embedded-broker.st",
     "protocolVersion: 5;", "protocolVersion: MQLITE_V5;", ["example"]),
    ("example-syntax", "examples/publish.st", "client open.\n[", "client open\n[", ["example"]),
    ("blocking-function-bound", "src/MQLite-Core/MQLiteBrokerHandle.class.st",
     "{ #category : #'private - ffi' }\nMQLiteBrokerHandle >> mqlite_broker_stop [",
     "{ #category : #'private - ffi' }\nMQLiteBrokerHandle >> mqlite_broker_run [\n\n"
     "\t^ self ffiCall: #( int32 mqlite_broker_run ( self ) )\n]\n\n"
     "{ #category : #'private - ffi' }\nMQLiteBrokerHandle >> mqlite_broker_stop [",
     ["blocking", "coverage"]),
    ("blocking-timeout", "src/MQLite-Client/MQLiteClient.class.st",
     "handle mqlite_client_poll: 0.", "handle mqlite_client_poll: pollInterval.", ["blocking"]),
    ("blocking-timeout-in-example", "examples/publish.st", "client open.\n[",
     "client open.\n(MQLiteClientHandle newClientId: 'x') mqlite_client_poll: 1000.\n[",
     ["blocking"]),
    ("header-grows", "mqlite.h", "#ifdef __cplusplus\n}",
     "MQLITE_API int32_t mqlite_client_retained_count(const mqlite_client *c);\n"
     "#ifdef __cplusplus\n}", ["coverage"]),
    ("header-signature-changes", "mqlite.h",
     "MQLITE_API int32_t mqlite_client_fd(const mqlite_client *c);",
     "MQLITE_API int64_t mqlite_client_fd(const mqlite_client *c);", ["ffi-return"]),
    ("unbound-stale", "UNBOUND.md", "- `mqlite_broker_run`:",
     "- `mqlite_broker_frob`: no such function, listed by mistake here\n- `mqlite_broker_run`:",
     ["coverage"]),
    ("unbound-without-reason", "UNBOUND.md",
     "- `mqlite_broker_new_with_allocator`: the same reason",
     "- `mqlite_broker_new_with_allocator`:\n- x: the same reason", ["coverage"]),
    ("unbound-but-bound", "UNBOUND.md", "- `mqlite_broker_run`:",
     "- `mqlite_client_fd`: listed although it is bound\n- `mqlite_broker_run`:",
     ["coverage"]),
]


def error_keys(report):
    """Errors without their line numbers, which a mutation may shift."""
    return [(e["kind"], e["message"]) for e in report["errors"]]


@pytest.mark.parametrize("name,rel,old,new,expected", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_checker_rejects_each_kind_of_mistake(copy, name, rel, old, new, expected):
    src, unbound, header = copy
    examples = src.parent / "examples"
    # Only the errors the mutation adds count (the unmutated copy is checked by the test
    # above), so a header change elsewhere does not hide what this case proves.
    _, before = run_json(src, unbound, header, examples)
    baseline = error_keys(before)
    target = {"UNBOUND.md": unbound, "mqlite.h": header}.get(rel) or src.parent / rel
    mutate(target, old, new)
    code, report = run_json(src, unbound, header, examples)
    assert code == 1, f"{name}: the checker accepted the mutation"
    added = error_keys(report)
    for key in baseline:
        if key in added:
            added.remove(key)
    kinds = sorted(kind for kind, _ in added)
    plus = [k[:-1] for k in expected if k.endswith("+")]
    exact = sorted(k for k in expected if not k.endswith("+"))
    if plus:
        assert set(kinds) == set(plus) | set(exact) and len(kinds) >= len(expected), added
    else:
        assert kinds == exact, added
