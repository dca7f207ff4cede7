"""The data officer's compliance report."""

from __future__ import annotations

from jinja2 import Environment


def render(env: Environment, manifest: dict, compliance: dict) -> str:
    return env.get_template("compliance_report.html.j2").render(
        title="Contract compliance report",
        subtitle=f"As of {compliance.get('as_of', '—')} · release {manifest.get('release', '')[:12]}",
        c=compliance,
        manifest=manifest,
    )
