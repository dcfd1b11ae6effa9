"""The sandbox EHR's chart page: every patient's visits, each with a button that launches
unitguard in a frame, and the menu's coder launch without a patient."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, abort, render_template_string, request

from sandbox.seed import CODER_USER
from sandbox.state import Sandbox


def install_chart(app: Flask, sandbox: Sandbox, fhir: str) -> None:
    """Add the chart page and its two launches to the sandbox app."""

    @app.get("/")
    def chart():
        patients = sandbox.store.all("Patient")
        encounters = sandbox.store.all("Encounter")
        rows = []
        for patient in patients:
            visits = [
                e
                for e in encounters
                if (e.get("subject") or {}).get("reference") == f"Patient/{patient['id']}"
            ]
            rows.append(
                (
                    patient,
                    sorted(
                        visits, key=lambda e: (e.get("period") or {}).get("start", ""), reverse=True
                    ),
                )
            )
        return render_template_string(
            CHART, rows=rows, profile=sandbox.profile.name, coder=CODER_USER
        )

    @app.get("/chart/launch/<encounter_id>")
    def chart_launch(encounter_id: str):
        found = sandbox.store.get("Encounter", encounter_id)
        if found is None:
            abort(404)
        patient = (found[0].get("subject") or {}).get("reference", "").split("/")[-1]
        launch = sandbox.grants.new_launch(patient, encounter_id)
        src = f"{sandbox.app_launch_url}?{urlencode({'iss': fhir, 'launch': launch})}"
        return render_template_string(FRAME, src=src, encounter=encounter_id)

    @app.get("/chart/coder-launch")
    def coder_launch():
        """The EHR menu's "Coding work queue": a launch without patient context, as a coder."""
        launch = sandbox.grants.new_launch(None, None, user=request.args.get("user", CODER_USER))
        src = f"{sandbox.app_launch_url}?{urlencode({'iss': fhir, 'launch': launch})}"
        return render_template_string(FRAME, src=src, encounter="coding work queue")


CHART = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sandbox EHR</title>
<style>body{font:14px system-ui;margin:1rem}td,th{padding:.2rem .6rem;text-align:left}
.warn{background:#fff3cd;padding:.4rem}</style></head><body>
<p class="warn">Sandbox EHR ({{ profile }} profile): synthetic data only, never patient data.</p>
<p><a class="coder-launch" id="coder-launch" href="/chart/coder-launch">Coding work queue</a>
(the EHR menu's launch as the coder {{ coder }}, no patient)</p>
<h1>Patient chart</h1><table><tr><th>Patient</th><th>Visit</th><th>Date</th><th></th></tr>
{% for patient, visits in rows %}{% for e in visits %}<tr>
<td>{{ patient.id }}</td><td>{{ e.id }}</td><td>{{ (e.period or {}).start }}</td>
<td><a class="launch" data-encounter="{{ e.id }}" href="/chart/launch/{{ e.id }}">unitguard</a>
</td></tr>{% endfor %}{% endfor %}</table></body></html>"""


FRAME = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Chart: visit
{{ encounter }}</title><style>body{margin:0;font:14px system-ui}header{padding:.4rem;
background:#234;color:#fff}iframe{border:0;width:100%;height:calc(100vh - 2.2rem)}</style>
</head><body><header>Sandbox EHR: visit {{ encounter }} (synthetic data)</header>
<iframe id="app" title="unitguard" src="{{ src }}"></iframe></body></html>"""
