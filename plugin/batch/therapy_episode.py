"""The mixed export's therapy episodes: weekly PT or OT visits built with
``plugin.synthetic`` under one certified plan of care, each session's note written anew."""

from __future__ import annotations

import random
from datetime import date, timedelta

import orjson

from plugin.batch.ndjson_writer import NdjsonWriter
from plugin.batch.synth import SLOTS_PER_DAY, assign_team, shift_times
from plugin.synthetic.ids import unique_ids
from plugin.synthetic.resources import text_data
from plugin.synthetic.visit import VisitBuilder, clean_visit

# A therapist writes each session's note anew: three sentences, one from each list, never the
# same three twice in an episode (a note repeated word for word is a cloned-note finding).
DEFICITS = {
    "PT": (
        "Pt with impaired single-leg balance and decreased proprioception R ankle after TKA.",
        "Pt with postural instability and increased sway after a fall at home.",
        "Pt with poor postural control and fall risk after a stroke.",
        "Pt with gait instability and decreased proprioception from peripheral neuropathy.",
    ),
    "OT": (
        "Pt with impaired standing balance limiting kitchen and dressing tasks after a stroke.",
        "Pt with decreased coordination of the R hand and fall risk during self-care.",
    ),
}
INTERVENTIONS = {
    "PT": (
        "Perturbation training on foam with min verbal cues for hip strategy.",
        "Tandem and single-leg stance on a rocker board with tactile cues and CGA.",
        "Stepping strategy drills to lateral perturbations with mod tactile cues.",
        "PNF D2 patterns with manual facilitation for trunk control.",
        "Proprioceptive training on a BOSU with eyes closed and verbal cues.",
        "Weight shifting in standing with visual feedback for postural control.",
        "Dynamic balance on an airex pad with head turns and tactile cues.",
        "Reactive balance training with a ball toss on foam and manual guidance.",
    ),
    "OT": (
        "Kitchen task at counter height, retrieving items from an upper cabinet with cues.",
        "Lower body dressing with reacher and sock aid, verbal cues for sequencing.",
        "Tub transfer training with bench and grab bar, verbal cues for hand placement.",
        "Meal preparation in standing for 12 minutes with cues for pacing.",
        "Laundry task loading and unloading the washer with a reacher and tactile cues.",
        "Grooming at the sink in standing, cues for energy conservation.",
        "Bed making with pacing strategies and verbal cues.",
        "Toilet transfer with raised seat and CGA, cues for safety.",
    ),
}
RESPONSES = (
    "Pt tolerated the session well with decreased sway.",
    "Pt needed two rest breaks and improved by the end.",
    "Pt reported mild fatigue and kept the task going.",
    "Pt progressed from min A to CGA during the session.",
    "Pt demonstrated better posture than last session.",
    "Pt increased hold time by 20 seconds over last week.",
    "Pt demonstrated better anticipatory control on the second set.",
    "Pt required fewer cues by the end of the session.",
)
PLANS = (
    "Plan: progress to dual-task activities.",
    "Plan: add uneven surfaces next visit.",
    "Plan: increase speed and shorten rests.",
    "Plan: begin community-level tasks.",
    "Plan: reduce cues and upper limb support.",
    "Plan: add reaching outside the base of support.",
    "Plan: progress to single-leg tasks on foam.",
    "Plan: retest the outcome measure in two weeks.",
)


def _session_notes(rng: random.Random, visits: int, discipline: str) -> list[str]:
    combos = [
        (a, b, c)
        for a in INTERVENTIONS[discipline]
        for b in RESPONSES
        for c in PLANS
    ]  # fmt: skip
    deficit = rng.choice(DEFICITS[discipline])
    return [" ".join((deficit, *combo)) for combo in rng.sample(combos, visits)]


def _ot_visit(day: str, payer: str, sopt: str) -> VisitBuilder:
    """An OT visit: 97530 30 min + 97535 23 min (53 timed minutes, 4 units), billed 2 + 2 GO."""
    b = VisitBuilder(day=day, payer=payer, sopt=sopt, plan_of_care=False)
    b.proc(
        "97530",
        "09:00",
        "09:30",
        performer="OT",
        note="Therapeutic activities: standing tolerance at counter for kitchen tasks with CGA.",
    )
    b.proc(
        "97535",
        "09:30",
        "09:53",
        performer="OT",
        goals=("goal-1",),
        note="Self-care training: lower body dressing with reacher and sock aid, min A.",
    )
    b.line("97530", 2, mods=("GO",))
    b.line("97535", 2, mods=("GO",))
    return b


def write_episode(
    rng: random.Random,
    writer: NdjsonWriter,
    pid: str,
    payer: str,
    sopt: str,
    teams: int,
    booked: dict[tuple[int, str], int],
    written: set[str],
) -> list[tuple[str, str, str]]:
    """The patient's therapy episode in 2026, each visit in a free hourly slot of one team
    (``booked``: slots taken per team and day; ``written``: therapists already written);
    returns (day, encounter, discipline) of each visit."""
    rows = []
    ot = rng.random() < 0.3
    # 6 to 12 weekly visits inside 2026: one certified plan of care (90 days at
    # most), a progress report on the tenth treatment day, and under the year's
    # KX threshold, so no visit needs the KX modifier
    first = date(2026, rng.randint(1, 9), rng.randint(1, 28))
    visits = rng.randint(6, 12)
    notes = _session_notes(rng, visits, "OT" if ot else "PT")
    for v in range(visits):
        day = first + timedelta(days=7 * v)
        while True:  # a free hourly slot of one team (no shared therapist minutes)
            team = rng.randrange(teams)
            slot = booked.get((team, day.isoformat()), 0)
            if slot < SLOTS_PER_DAY:
                booked[(team, day.isoformat())] = slot + 1
                break
            day += timedelta(days=1)
        iso = day.isoformat()
        builder = (
            _ot_visit(iso, payer, sopt)
            if ot
            else clean_visit(day=iso, payer=payer, sopt=sopt, plan_of_care=False)
        )
        if v == 0:
            start = first.isoformat()
            end = (first + timedelta(days=89)).isoformat()
            discipline = "Occupational therapy" if ot else "Physical therapy"
            builder.plan_of_care(start, end, start, discipline=discipline)
        if v == 9:
            author, loinc = ("ot", "11507-1") if ot else ("pt", "11508-9")
            builder.progress_report(iso, author=author, loinc=loinc)
        for e in builder.entries:  # the balance score improves over the episode
            r = e["resource"]
            if r["resourceType"] == "Procedure" and r["code"]["coding"][0]["code"] in (
                "97112",
                "97530",
            ):
                r["note"] = [{"text": notes[v]}]
            if r["resourceType"] == "DocumentReference":
                signer = "OT" if ot else "PT"
                text = f"Treatment note, visit {v + 1}. {notes[v]} Signed, {signer}."
                r["content"][0]["attachment"]["data"] = text_data(text)
            if r["resourceType"] == "Observation" and "encounter" in r:
                r["valueQuantity"]["value"] = min(56, 40 + v)
            if r["resourceType"] == "Observation" and "encounter" not in r:
                earlier = (day - timedelta(days=14)).isoformat()
                r["effectiveDateTime"] = f"{earlier}T09:05:00-05:00"
        prefix = f"{pid}-t{v}"
        text = orjson.dumps(unique_ids(builder.bundle(), prefix))
        text = text.replace(f"{prefix}-pat-1".encode(), pid.encode())
        text = text.replace(f"{prefix}-cov-1".encode(), f"{pid}-cov".encode())
        text = text.replace(f"{prefix}-goal-".encode(), f"{pid}-goal-".encode())
        text = text.replace(f"{prefix}-poc-".encode(), f"{pid}-poc-".encode())
        for entry in orjson.loads(text)["entry"]:
            r = entry["resource"]
            if r["resourceType"] in ("Patient", "Coverage"):
                continue
            if r["resourceType"] == "Goal" and v:
                continue  # the episode's goals, written with its first visit
            if r["resourceType"] == "Observation" and "encounter" not in r and v:
                continue  # the baseline score, once
            if r["resourceType"] == "Practitioner":
                r = {**r, "id": f"{r['id']}-t{team}"}
                if r["id"] in written:
                    continue  # each team's therapists (and referrer) once
                written.add(r["id"])
            writer.write(r, assign_team(orjson.dumps(shift_times(r, slot - 2)), team))
        rows.append((iso, f"Encounter/{prefix}-enc-1", "OT" if ot else "PT"))
    return rows
