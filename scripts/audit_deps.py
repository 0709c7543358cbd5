"""Vulnerability audit of the locked dependencies (requirements.lock).

Usage: .venv/bin/python scripts/audit_deps.py [--lock PATH] [--pip-audit]

Default mode asks PyPI's JSON API directly, per pinned package:

1. ``/pypi/<name>/<version>/json`` (the release endpoint, the one pip-audit uses): its
   ``vulnerabilities`` are those of exactly our version, so when it answers the check
   is complete.
2. ``/pypi/<name>/json`` (the project endpoint): its ``vulnerabilities`` list those of
   the *latest* release only (PyPI JSON API docs). A package pinned at the latest
   release is therefore fully checked. For one pinned below the latest, a vulnerability
   fixed before the latest release is invisible here, so the package is reported as
   not fully checkable (with how far behind it is); a vulnerability that the latest
   release still has is reported as likely affecting our pin too, unless its
   ``fixed_in`` shows a fix on our release line at or below our version.

Withdrawn advisories are ignored. Exit status: 0 every package fully checked and none
vulnerable; 1 a vulnerability found (certain or likely); 2 nothing found but some
packages could not be fully checked (or a request failed).

``--pip-audit`` runs pip-audit on the lock instead (``--strict``, so a package it
cannot look up fails the run rather than being skipped), after checking that its
vulnerability service answers: PyPI's release endpoint, else OSV. Use it where the
network allows; pip-audit itself is not a project dependency (``pipx install
pip-audit`` or a throwaway venv; ``--pip-audit-cmd`` points at it).
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LOCK = REPO / "requirements.lock"
PYPI = "https://pypi.org/pypi"
OSV_QUERY = "https://api.osv.dev/v1/query"
CONCURRENCY = 16
TIMEOUT_S = 20.0
USER_AGENT = "backtest-service-audit-deps/1 (+httpx)"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;\\]+)")


# ---------------------------------------------------------------------------- lock


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503) name
    version: str
    via: tuple[str, ...] = ()  # requirers, from uv's "# via" annotations

    @property
    def direct(self) -> bool:
        return any(v.endswith("(pyproject.toml)") for v in self.via)


def parse_lock(text: str, exclude: Iterable[str] = ()) -> list[Pin]:
    """``name==version`` lines of a requirements file, with uv's ``# via`` notes.

    Editable/URL lines and the names in ``exclude`` (the project itself) are skipped.
    """
    skip = {canonicalize_name(n) for n in exclude}
    pins: list[tuple[str, str, list[str]]] = []
    in_via = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            in_via = False
            continue
        if line.startswith("#"):
            body = line.lstrip("#").strip()
            if pins and raw[:1].isspace():
                if body.startswith("via"):
                    rest = body[3:].strip()
                    if rest:
                        pins[-1][2].append(rest)
                    in_via = True
                    continue
                if in_via and body:
                    pins[-1][2].append(body)
                    continue
            in_via = False
            continue
        in_via = False
        match = _PIN.match(line)
        if match:
            pins.append((canonicalize_name(match[1]), match[2], []))
    return [Pin(n, v, tuple(via)) for n, v, via in pins if n not in skip]


# --------------------------------------------------------------------- assessment


class Status(enum.Enum):
    OK = "ok"
    VULNERABLE = "VULNERABLE"
    LIKELY_VULNERABLE = "LIKELY VULNERABLE"
    INCOMPLETE = "not fully checked"
    ERROR = "error"


@dataclass(frozen=True)
class Vuln:
    id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]
    summary: str
    link: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Vuln:
        summary = data.get("summary") or data.get("details") or ""
        return cls(
            id=str(data.get("id") or "?"),
            aliases=tuple(str(a) for a in data.get("aliases") or ()),
            fixed_in=tuple(str(f) for f in data.get("fixed_in") or ()),
            summary=" ".join(str(summary).split())[:160],
            link=str(data.get("link") or ""),
        )


def active_vulns(payload: Mapping[str, Any]) -> list[Vuln]:
    """The ``vulnerabilities`` of a JSON API payload, withdrawn ones dropped."""
    return [
        Vuln.from_json(v)
        for v in payload.get("vulnerabilities") or ()
        if not v.get("withdrawn")
    ]


def _versions(raw: Iterable[str]) -> list[Version]:
    out = []
    for text in raw:
        try:
            out.append(Version(text))
        except InvalidVersion:
            continue
    return out


def fix_for(pinned: Version, vuln: Vuln) -> Version | None:
    """The lowest ``fixed_in`` version above ``pinned`` (the upgrade target)."""
    above = [f for f in _versions(vuln.fixed_in) if f > pinned]
    return min(above) if above else None


def affects_pinned(pinned: Version, latest: Version, vuln: Vuln) -> bool | None:
    """Does ``vuln``, known to affect the latest release, affect ``pinned``?

    True: certainly (we are on the latest release). False: our release line already
    carries a fix (a ``fixed_in`` at or below our version with our major.minor, the
    affected latest being on another line). None: probably, but the affected range's
    start is not in this data (the advisory may postdate our version).
    """
    if pinned == latest:
        return True
    line = pinned.release[:2]
    for fixed in _versions(vuln.fixed_in):
        if fixed <= pinned and fixed.release[:2] == line != latest.release[:2]:
            return False
    return None


def _has_files(files: Sequence[Mapping[str, Any]]) -> bool:
    return any(not f.get("yanked") for f in files)


def releases_behind(
    pinned: Version, latest: Version, releases: Mapping[str, Any] | None
) -> int | None:
    """Final, non-yanked releases in (pinned, latest]; None without release data."""
    if releases is None:
        return None
    count = 0
    for text, files in releases.items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if version.is_prerelease or not _has_files(files or ()):
            continue
        if pinned < version <= latest:
            count += 1
    return count


@dataclass(frozen=True)
class Finding:
    vuln: Vuln
    certain: bool
    fix: str | None


@dataclass
class Result:
    pin: Pin
    status: Status
    latest: str = ""
    behind: int | None = None
    source: str = ""  # "release" or "project" endpoint, "" when nothing was read
    note: str = ""
    findings: list[Finding] = field(default_factory=list)


def assess(
    pin: Pin,
    project: Mapping[str, Any] | None,
    release: Mapping[str, Any] | None,
    error: str = "",
) -> Result:
    """Decide one package's status from the JSON PyPI returned (pure; no I/O)."""
    if project is None:
        return Result(pin, Status.ERROR, note=error or "project JSON unavailable")
    try:
        pinned = Version(pin.version)
        latest = Version(str(project["info"]["version"]))
    except (InvalidVersion, KeyError, TypeError) as exc:
        return Result(pin, Status.ERROR, note=f"unreadable version: {exc}")

    releases = project.get("releases")
    result = Result(
        pin,
        Status.OK,
        latest=str(latest),
        behind=releases_behind(pinned, latest, releases),
    )
    files = _release_files(releases, pinned)
    if releases is not None and files is None:
        result.status = Status.ERROR
        result.note = "pinned version is not on PyPI"
        return result
    yanked = bool(files) and not _has_files(files or ())
    yank_note = "pinned release is yanked; " if yanked else ""

    if release is not None:  # exact data for our version: complete
        result.source = "release"
        result.findings = [
            Finding(v, True, _str(fix_for(pinned, v))) for v in active_vulns(release)
        ]
        result.status = Status.VULNERABLE if result.findings else Status.OK
        result.note = yank_note
        return result

    result.source = "project"
    for vuln in active_vulns(project):
        hit = affects_pinned(pinned, latest, vuln)
        if hit is not False:
            result.findings.append(
                Finding(vuln, hit is True, _str(fix_for(pinned, vuln)))
            )

    if any(f.certain for f in result.findings):
        result.status = Status.VULNERABLE
    elif result.findings:
        result.status = Status.LIKELY_VULNERABLE
    if pinned == latest:
        result.note = yank_note
        return result
    if pinned > latest:
        why = f"pinned above the latest stable {latest}"
    else:
        behind = "?" if result.behind is None else str(result.behind)
        why = f"{behind} release(s) behind {latest}"
    result.note = (
        f"{yank_note}{why}; advisories fixed before {latest} are not visible "
        "(release endpoint unreachable)"
    )
    if result.status is Status.OK:
        result.status = Status.INCOMPLETE
    return result


def _release_files(
    releases: Mapping[str, Any] | None, pinned: Version
) -> list[Mapping[str, Any]] | None:
    """The file entries of our release (keys compared as versions); None if absent."""
    for text, files in (releases or {}).items():
        try:
            if Version(text) == pinned:
                return list(files or ())
        except InvalidVersion:
            continue
    return None


def _str(version: Version | None) -> str | None:
    return None if version is None else str(version)


def exit_code(results: Sequence[Result]) -> int:
    statuses = {r.status for r in results}
    if statuses & {Status.VULNERABLE, Status.LIKELY_VULNERABLE}:
        return 1
    if statuses & {Status.INCOMPLETE, Status.ERROR}:
        return 2
    return 0


# -------------------------------------------------------------------------- network


async def _get_json(
    client: httpx.AsyncClient, url: str
) -> tuple[dict[str, Any] | None, str]:
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}".strip()
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}"
    try:
        data = response.json()
    except ValueError:
        return None, "invalid JSON"
    if not isinstance(data, dict):
        return None, "unexpected JSON"
    return data, ""


async def fetch_and_assess(
    client: httpx.AsyncClient, pin: Pin, gate: asyncio.Semaphore
) -> Result:
    async with gate:
        release, _ = await _get_json(client, f"{PYPI}/{pin.name}/{pin.version}/json")
        project, error = await _get_json(client, f"{PYPI}/{pin.name}/json")
    return assess(pin, project, release, error)


async def audit(
    pins: Sequence[Pin],
    transport: httpx.AsyncBaseTransport | None = None,
    concurrency: int = CONCURRENCY,
) -> list[Result]:
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        transport=transport or httpx.AsyncHTTPTransport(retries=2),
        timeout=TIMEOUT_S,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=True,
    ) as client:
        return list(
            await asyncio.gather(*(fetch_and_assess(client, p, gate) for p in pins))
        )


# --------------------------------------------------------------------------- report


def format_report(results: Sequence[Result]) -> str:
    rows = [("package", "pinned", "latest", "status", "detail")]
    order = {
        Status.VULNERABLE: 0,
        Status.LIKELY_VULNERABLE: 1,
        Status.ERROR: 2,
        Status.INCOMPLETE: 3,
        Status.OK: 4,
    }
    ranked = sorted(results, key=lambda r: (order[r.status], r.pin.name))
    for r in ranked:
        detail = r.note
        if r.findings:
            ids = ", ".join(f.vuln.id for f in r.findings)
            detail = f"{ids}; {detail}" if detail else ids
        rows.append(
            (r.pin.name, r.pin.version, r.latest or "-", r.status.value, detail)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for i, row in enumerate(rows):
        cells = [c.ljust(w) for c, w in zip(row[:4], widths, strict=True)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in [*widths, 6]))

    findings = [(r, f) for r in ranked for f in r.findings]
    if findings:
        lines += ["", "Findings:"]
        for r, f in findings:
            kind = "affects" if f.certain else "likely affects"
            aliases = f" ({', '.join(f.vuln.aliases)})" if f.vuln.aliases else ""
            lines.append(
                f"- {r.pin.name} {r.pin.version}: {f.vuln.id}{aliases} {kind} it; "
                f"fixed in {', '.join(f.vuln.fixed_in) or 'no release yet'}"
            )
            if f.vuln.summary:
                lines.append(f"    {f.vuln.summary}")
            if f.vuln.link:
                lines.append(f"    {f.vuln.link}")
            lines.append(f"    action: {_action(r.pin, f)}")

    counts = {s: sum(r.status is s for r in results) for s in Status}
    at_latest = sum(r.latest == r.pin.version for r in results)
    lines += [
        "",
        f"{len(results)} packages: {at_latest} at the latest release, "
        f"{counts[Status.OK]} fully checked clean, "
        f"{counts[Status.VULNERABLE]} vulnerable, "
        f"{counts[Status.LIKELY_VULNERABLE]} likely vulnerable, "
        f"{counts[Status.INCOMPLETE]} not fully checkable here, "
        f"{counts[Status.ERROR]} errors -> exit {exit_code(results)}",
    ]
    return "\n".join(lines)


def _action(pin: Pin, finding: Finding) -> str:
    if finding.fix is None:
        return "no fixed release above the pin: assess exposure / find an alternative"
    if pin.direct:
        return (
            f"raise the lower bound in pyproject.toml to {pin.name}>={finding.fix} "
            "and re-lock"
        )
    parents = ", ".join(pin.via) or "unknown"
    return (
        f"transitive (via {parents}): upgrade to >={finding.fix} via a parent bump "
        "or a constraint, then re-lock"
    )


# ------------------------------------------------------------------------ pip-audit


def vuln_service_reachable(pins: Sequence[Pin]) -> str | None:
    """'pypi' if PyPI's release endpoint answers for a locked pin, else 'osv' if
    OSV answers, else None."""
    if not pins:
        return None
    probe = pins[0]
    query = {
        "package": {"name": probe.name, "ecosystem": "PyPI"},
        "version": probe.version,
    }
    with httpx.Client(timeout=10.0, headers={"User-Agent": USER_AGENT}) as http:
        for service, method, url, body in (
            ("pypi", "GET", f"{PYPI}/{probe.name}/{probe.version}/json", None),
            ("osv", "POST", OSV_QUERY, query),
        ):
            try:
                if http.request(method, url, json=body).status_code == 200:
                    return service
            except httpx.HTTPError:
                continue
    return None


def run_pip_audit(lock: Path, pins: Sequence[Pin], command: str) -> int:
    argv = shlex.split(command)
    if not argv or shutil.which(argv[0]) is None:
        print(f"pip-audit not found ({command!r}); install it or pass --pip-audit-cmd")
        return 2
    service = vuln_service_reachable(pins)
    if service is None:
        print(
            "No vulnerability service reachable (PyPI's release JSON endpoint and "
            "api.osv.dev both fail): pip-audit would skip every package. Run without "
            "--pip-audit for the project-endpoint check."
        )
        return 2
    cmd = [
        *argv,
        "-r",
        str(lock),
        "--no-deps",  # the lock is complete and pinned: audit exactly it
        "--disable-pip",
        "--strict",  # a package that cannot be looked up fails, not skips
        "--progress-spinner",
        "off",
        "-s",
        service,
    ]
    print("$", shlex.join(cmd), flush=True)
    return subprocess.run(cmd, check=False).returncode


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK)
    parser.add_argument(
        "--exclude",
        action="append",
        default=["backtest-service"],
        help="package to skip (repeatable; the project itself by default)",
    )
    parser.add_argument("--pip-audit", action="store_true", help="run pip-audit")
    parser.add_argument("--pip-audit-cmd", default="pip-audit")
    args = parser.parse_args(argv)

    pins = parse_lock(args.lock.read_text(encoding="utf-8"), exclude=args.exclude)
    if not pins:
        print(f"no name==version pins in {args.lock}")
        return 2
    if args.pip_audit:
        return run_pip_audit(args.lock, pins, args.pip_audit_cmd)
    results = asyncio.run(audit(pins))
    print(format_report(results))
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
