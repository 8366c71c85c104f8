"""scripts/test_summary.py counts what ran, and never lets a silent package look green."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from test_summary import main

JUNIT = """<?xml version="1.0"?><testsuites><testsuite>
<testcase classname="t" name="ok1"/><testcase classname="t" name="ok2"/>
<testcase classname="t" name="bad"><failure message="x"/></testcase>
<testcase classname="t" name="err"><error message="y"/></testcase>
<testcase classname="t" name="skip"><skipped/></testcase>
</testsuite></testsuites>"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_counts_python_and_cmake_results(tmp_path, capsys):
    write(tmp_path / "a" / "pytest.xml", JUNIT)
    write(tmp_path / "b" / "test_results" / "b" / "test_x.xunit.xml", JUNIT)
    rc = main(["--build-base", str(tmp_path), "--expect", "a", "b", "--check", "ruff=0"])
    assert rc == 1
    assert capsys.readouterr().out.strip().splitlines()[-1] == "5 passed, 4 failed, 2 skipped"


def test_all_green(tmp_path, capsys):
    write(tmp_path / "a" / "pytest.xml", '<testsuite><testcase classname="t" name="ok"/></testsuite>')
    assert main(["--build-base", str(tmp_path), "--expect", "a", "--check", "ruff=0"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "2 passed, 0 failed, 0 skipped"


def test_package_without_results_or_passes_fails(tmp_path, capsys):
    write(
        tmp_path / "a" / "pytest.xml", '<testsuite><testcase classname="t" name="s"><skipped/></testcase></testsuite>'
    )
    assert main(["--build-base", str(tmp_path), "--expect", "a", "missing", "--check", "ruff=1"]) == 1
    out = capsys.readouterr().out
    assert "missing: no test results" in out and "a: no passing test" in out
    assert out.strip().splitlines()[-1] == "0 passed, 3 failed, 1 skipped"
