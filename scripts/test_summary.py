"""Adds up every suite's results (TRX from dotnet test, JUnit XML from pytest) into the one
closing line CI reads: 'N passed, N failed'. Exits 1 when anything failed or nothing ran.

Failed tests are named (with the first line of their message) just above that line, because CI
keeps only the tail of the log: a failure buried in a suite's console output is otherwise lost."""
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def first_line(text: str | None) -> str:
    text = (text or "").strip()
    return text.splitlines()[0][:300] if text else ""


def main(results_dir: str) -> int:
    passed = failed = skipped = 0
    failures: list[str] = []
    for trx in sorted(Path(results_dir).rglob("*.trx")):
        root = ET.parse(trx).getroot()
        counters = root.find(".//{*}Counters")
        if counters is None:
            continue
        passed += int(counters.get("passed", 0))
        failed += int(counters.get("failed", 0)) + int(counters.get("error", 0)) + int(counters.get("timeout", 0))
        skipped += int(counters.get("notExecuted", 0))
        for result in root.findall(".//{*}UnitTestResult"):
            if result.get("outcome") in ("Failed", "Error", "Timeout"):
                message = result.find(".//{*}ErrorInfo/{*}Message")
                failures.append(f"{result.get('testName')}: {first_line(message.text if message is not None else '')}")
    for junit in sorted(Path(results_dir).rglob("*.xml")):
        root = ET.parse(junit).getroot()
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        for s in suites:
            total = int(s.get("tests", 0))
            f = int(s.get("failures", 0)) + int(s.get("errors", 0))
            sk = int(s.get("skipped", 0))
            passed += total - f - sk
            failed += f
            skipped += sk
            for case in s.iter("testcase"):
                problem = case.find("failure")
                if problem is None:
                    problem = case.find("error")
                if problem is not None:
                    name = f"{case.get('classname')}::{case.get('name')}"
                    failures.append(f"{name}: {first_line(problem.get('message') or problem.text)}")
    for failure in failures:
        print(f"FAILED {failure}")
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
