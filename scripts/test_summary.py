"""Adds up every suite's results (TRX from dotnet test, JUnit XML from pytest) into the one
closing line CI reads: 'N passed, N failed'. Exits 1 when anything failed or nothing ran."""
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(results_dir: str) -> int:
    passed = failed = skipped = 0
    for trx in Path(results_dir).rglob("*.trx"):
        counters = ET.parse(trx).getroot().find(".//{*}Counters")
        if counters is None:
            continue
        passed += int(counters.get("passed", 0))
        failed += int(counters.get("failed", 0)) + int(counters.get("error", 0)) + int(counters.get("timeout", 0))
        skipped += int(counters.get("notExecuted", 0))
    for junit in Path(results_dir).rglob("*.xml"):
        root = ET.parse(junit).getroot()
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        for s in suites:
            total = int(s.get("tests", 0))
            f = int(s.get("failures", 0)) + int(s.get("errors", 0))
            sk = int(s.get("skipped", 0))
            passed += total - f - sk
            failed += f
            skipped += sk
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
