"""JUnit XML for CI systems: one <testcase> per gate check, failures carrying the check's message."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from evalkit.gate._records import GateReport

__all__ = ["junit_xml", "write_junit"]


def junit_xml(report: GateReport, *, suite: str = "evalkit gate") -> str:
    """The report as a JUnit XML document (testsuites > testsuite > testcase).

    Examples:
        >>> from evalkit.gate._records import GateCheck
        >>> xml = junit_xml(GateReport((GateCheck("min", "cmmlu.acc", False, "too low", 0.2, 0.3),)))
        >>> '<testsuite name="evalkit gate" tests="1" failures="1"' in xml
        True
    """
    failures = len(report.failures)
    root = ET.Element("testsuites", name=suite, tests=str(len(report.checks)), failures=str(failures))
    testsuite = ET.SubElement(root, "testsuite", name=suite, tests=str(len(report.checks)),
                              failures=str(failures), errors="0", skipped="0")
    for check in report.checks:
        case = ET.SubElement(testsuite, "testcase", classname=f"evalkit.gate.{check.kind}", name=check.name)
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=check.message, type="GateFailure")
            failure.text = check.message
        else:
            ET.SubElement(case, "system-out").text = check.message
    if report.notes:
        ET.SubElement(testsuite, "system-out").text = "\n".join(report.notes)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(report: GateReport, path: Path) -> Path:
    """Write `junit_xml(report)` to `path` (parent folders are created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(report), encoding="utf-8")
    return path
