"""The protocol coverage table stays honest: every id a test cites exists in
that version of the spec, every citation names its version, and no
statement that had a test (spec/coverage-baseline.txt) has lost it."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_spec_citations_are_valid_and_no_statement_lost_its_test():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "spec_coverage.py"), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "normative statements cited by tests" in r.stdout


def test_check_fails_when_a_covered_statement_loses_its_test(tmp_path):
    # Prove the check can fail: a baseline naming a statement no test cites.
    script = (ROOT / "scripts" / "spec_coverage.py").read_text()
    spec = tmp_path / "spec"
    spec.mkdir()
    for f in (ROOT / "spec").glob("*.tsv"):
        (spec / f.name).write_text(f.read_text())
    (spec / "coverage-baseline.txt").write_text("5.0 MQTT-4.13.2-1\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "spec_coverage.py").write_text(script)
    (tmp_path / "tests" / "c").mkdir(parents=True)
    (tmp_path / "tests" / "python").mkdir()
    r = subprocess.run([sys.executable, str(tmp_path / "scripts" / "spec_coverage.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "5.0 MQTT-4.13.2-1" in r.stdout
