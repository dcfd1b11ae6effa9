"""Findings quote what they read (contract section 5): the note's sentence with the matched
words marked, the times and values read, or the part of the note searched; in the JSON beside
``evidence`` (still the references) and on the review and Task pages with <mark>."""

from __future__ import annotations

import json
import re
from pathlib import Path

from plugin.report import to_dict
from plugin.review import review_bundle
from plugin.rules.quotes import LIMIT, clip, locate

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def findings(name: str) -> dict[str, dict]:
    bundle = json.loads((FIXTURES / f"{name}.json").read_text())
    return {f["rule"]: f for f in to_dict(review_bundle(bundle))["findings"]}


def marked(quote: dict) -> list[str]:
    return [quote["text"][a:b] for a, b in quote.get("marks", [])]


def test_a_negated_phrase_is_quoted_as_read_but_not_counted():
    found = findings("doc_weak_narrative")
    skilled = found["doc-no-skilled-intervention"]
    assert skilled["evidence"] == ["Procedure/doc-weak-narrative-proc-4"]  # still references
    (quote,) = skilled["quote_details"]
    assert quote["kind"] == "discounted" and quote["where"] == "the 97112 note"
    assert quote["text"] == "Patient performed balance exercises independently, no cues needed."
    assert marked(quote) == ["cues"]
    supervision = found["supervision-only"]["quote_details"][0]
    assert supervision["kind"] == "read" and marked(supervision) == ["independently", "no cues"]
    # nothing about a deficit was read at all: the parts of the note searched are quoted
    searched = found["doc-no-deficit"]["quote_details"]
    assert [q["kind"] for q in searched] == ["searched", "searched"]
    assert [q["where"] for q in searched] == ["the 97112 note", "the visit note"]


def test_time_findings_quote_the_times_and_units_read():
    overlap = findings("minutes_overlap")["minutes-overlap"]["quote_details"]
    assert overlap[0]["kind"] == "values"
    assert overlap[0]["text"].startswith("97112 09:00-09:25, 97110 09:15-09:40")
    units = findings("units_exceed")["units-exceed-time"]["quote_details"][0]
    assert units["text"] == "97112 09:00-09:20, billed 3 x 97112"
    total = findings("total_time_mismatch")["total-time-mismatch"]["quote_details"][0]
    assert "total treatment time 30 min" in total["text"]


def test_quotes_are_the_texts_read_at_most_200_characters_with_their_details_beside():
    for name in ("doc_weak_narrative", "minutes_overlap", "code_selection", "cloned_note"):
        for finding in findings(name).values():
            assert finding["quotes"] == [q["text"] for q in finding["quote_details"]]
            assert all(isinstance(q, str) and len(q) <= LIMIT for q in finding["quotes"])
    assert LIMIT == 200


def test_another_codes_words_are_marked_in_the_sentence():
    quote = findings("code_selection")["code-selection"]["quote_details"][0]
    words = marked(quote)
    assert "strengthening" in [w.lower() for w in words] and len(words) >= 3
    clone = findings("cloned_note")["cloned-note"]["quote_details"][0]
    assert "word for word in the earlier note" in clone["where"]


def test_a_long_sentence_is_clipped_around_its_first_mark():
    sentence = "word " * 80 + "no cues needed " + "more " * 60
    start = sentence.index("cues")
    text, marks = clip(sentence.strip(), [(start, start + 4)])
    assert len(text) <= LIMIT and text.startswith("…") and text.endswith("…")
    assert [text[a:b] for a, b in marks] == ["cues"]
    assert locate("Pt's balance improved", "pts balance") == (0, 12)
    assert locate("single-leg stance 10 s", "single leg stance") == (0, 17)
    assert locate("nothing here", "cues") is None


def test_quotes_are_marked_on_the_review_and_task_pages(tmp_path):
    from plugin.web import create_app
    from plugin.web.sessions import LaunchSession
    from plugin.web.settings import Settings
    from plugin.web.visits import StaticVisitSource
    from tests.web.conftest import bound_session

    bundle = json.loads((FIXTURES / "doc_weak_narrative.json").read_text())
    encounter = next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
    )
    patient = next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    app = create_app(
        Settings(
            testing=True,
            task_db=f"sqlite:///{tmp_path}/t.sqlite",
            outbox_db="sqlite://",
            session_db="sqlite://",
        ).validated(),
        visits=StaticVisitSource({encounter: bundle}),
    )
    iss = "http://ehr.test/fhir"
    launched = {"patient": f"Patient/{patient}", "encounter": f"Encounter/{encounter}"}
    clinician = LaunchSession(iss=iss, **launched)
    sid = bound_session(app, clinician)
    client = app.test_client()
    review = client.get(f"/review/{encounter}?sid={sid}").get_data(as_text=True)
    client.post(
        f"/review/{encounter}/sign-off",
        data={"sid": sid, "csrf_token": clinician.csrf, "confirm": "yes"},
    )
    task_id = app.extensions["unitguard"].store.search()[0][0].task["id"]
    coder = LaunchSession(iss=iss, fhir_user="Practitioner/coder-1", role="coder")
    task = client.get(f"/queue/{task_id}?sid={bound_session(app, coder)}").get_data(as_text=True)
    for page in (review, task):
        assert "independently, no <mark>cues</mark> needed." in page
        assert 'data-kind="discounted"' in page and "Read, but it does not count" in page
        assert re.search(r"Searched, found nothing \(the 97112 note\)", page)
