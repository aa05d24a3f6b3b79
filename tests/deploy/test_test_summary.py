"""scripts/test_summary.py: the closing line CI reads, and the failed tests named above it (CI keeps only the
tail of the log, so a failure must be named there)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ROOT / "scripts" / "test_summary.py"

TRX = """<?xml version="1.0" encoding="utf-8"?>
<TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">
  <Results>
    <UnitTestResult testName="Storage.Tests.ResilienceTests.Outage" outcome="Failed">
      <Output><ErrorInfo><Message>Shouldly.ShouldAssertException : doneAtStop
    should be less than 100</Message></ErrorInfo></Output>
    </UnitTestResult>
    <UnitTestResult testName="Storage.Tests.ResilienceTests.Retry_After" outcome="Passed" />
  </Results>
  <ResultSummary outcome="Failed"><Counters total="2" executed="2" passed="1" failed="1" error="0" timeout="0" notExecuted="0" /></ResultSummary>
</TestRun>
"""

JUNIT = """<testsuite name="chaos-soak" tests="2" failures="1" errors="0" skipped="0">
  <testcase classname="soak" name="zero pending"><failure message="zero pending: 3 pending">3 pending</failure></testcase>
  <testcase classname="soak" name="report produced" />
</testsuite>
"""


def run(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SUMMARY), str(folder)], capture_output=True, text=True, timeout=30)


def test_failed_tests_are_named_above_the_closing_line(tmp_path):
    (tmp_path / "a.trx").write_text(TRX, encoding="utf-8")
    (tmp_path / "soak.xml").write_text(JUNIT, encoding="utf-8")

    result = run(tmp_path)

    lines = result.stdout.strip().splitlines()
    assert result.returncode == 1
    assert lines[-1] == "2 passed, 2 failed"
    assert "FAILED Storage.Tests.ResilienceTests.Outage: Shouldly.ShouldAssertException : doneAtStop" in lines[:-1]
    assert "FAILED soak::zero pending: zero pending: 3 pending" in lines[:-1]
    assert not any("Retry_After" in line or "report produced" in line for line in lines)


def test_all_passed_prints_only_the_closing_line(tmp_path):
    (tmp_path / "soak.xml").write_text(JUNIT.replace(' failures="1"', ' failures="0"').replace(
        '<failure message="zero pending: 3 pending">3 pending</failure>', ""), encoding="utf-8")

    result = run(tmp_path)

    assert result.returncode == 0
    assert result.stdout.strip().splitlines() == ["2 passed, 0 failed"]
