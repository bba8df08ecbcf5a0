"""What the robot check found: one `Finding` per mistake, gathered in a `RobotCheckReport`.

A finding names the place to change (a spec field, a model element, a builder value) and the
change, so that a user who never read the simulator's source knows what to do. Errors make a
task fail or crash; warnings cost success or realism without a message anywhere else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

CHECKS: dict[str, str] = {
    "builder": "the builder runs, the model compiles, and every name in the rig is in the model",
    "control_rate": "the control period against the physics step",
    "safety": "the spawn box and the expert's heights inside the spec's safety workspace",
    "spec": "the spec matches the compiled model: arms, joint counts, order, ranges and their units",
    "home": "the home pose inside the joint ranges, held by the servos, free of contact, pointing down",
    "gripper": "open/closed inside the joint's range; closes on a cube at the TCP, holds it, opens again",
    "fingertips": "fingertip depth below the TCP against the push height and the grasp height",
    "workspace": "the spawn box reachable top-down by the expert's IK at the grasp, hover and lift heights",
    "expert": "a short scripted-expert run per task, the first failure diagnosed by phase",
}
"""Every check, in the order it runs, with what it looks at (the report's and the docs' wording)."""


@dataclass(frozen=True)
class Finding:
    """One mistake: which check saw it, where to change it, what is wrong and how to fix it.

    ``where`` names the place to change, prefixed by its kind: ``spec`` (a field of the spec
    file), ``model`` (an element of the compiled MuJoCo model), ``builder`` (a value the
    builder returns or sets), e.g. ``spec arms[0].name`` or ``model joint 'arm/gripper'``.
    """

    check: str
    code: str
    severity: Severity
    where: str
    message: str
    fix: str

    def line(self) -> str:
        return f"{self.severity}: [{self.check}] {self.where}: {self.message}; fix: {self.fix}"


@dataclass
class RobotCheckReport:
    """The result of `check_robot`: findings, checks passed and skipped, expert success per task."""

    robot: str
    full: bool
    findings: list[Finding] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # check → why it did not run
    expert: dict[str, dict] = field(default_factory=dict)  # task → {episodes, successes, failure}
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def add(self, findings: list[Finding], check: str) -> None:
        """Record what one check found (nothing: it passed)."""
        self.findings.extend(findings)
        if not any(f.check == check for f in findings):
            self.passed.append(check)

    def to_dict(self) -> dict:
        return {
            "robot": self.robot, "full": self.full, "ok": self.ok,
            "errors": len(self.errors), "warnings": len(self.warnings),
            "findings": [asdict(f) for f in self.findings],
            "passed": self.passed, "skipped": self.skipped, "expert": self.expert,
            "seconds": round(self.seconds, 2),
        }

    def format(self) -> str:
        """The report as a person reads it: one block per finding, then what passed."""
        kind = "full check" if self.full else "quick check (no expert runs)"
        lines = [f"robot check {self.robot} ({kind}, {self.seconds:.1f} s)"]
        for f in self.findings:
            lines.append(f"  {f.severity.upper():<7} [{f.check}] {f.where}")
            lines.append(f"          {f.message}")
            lines.append(f"          fix: {f.fix}")
        for task, result in self.expert.items():
            line = f"  expert  {task:<11} {result['successes']}/{result['episodes']} episodes"
            if "failure" in result:
                fail = result["failure"]
                line += f" (seed {fail['seed']}: {fail['cause']} in phase {fail['phase']!r})"
            lines.append(line)
        if self.passed:
            lines.append(f"  ok      {', '.join(self.passed)}")
        for check, why in self.skipped.items():
            lines.append(f"  skipped {check}: {why}")
        if self.ok:
            lines.append("no findings")
        else:
            lines.append(f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        return "\n".join(lines)
