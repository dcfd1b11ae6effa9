"""Issue 23's rule changes, beyond firing or not: what the minutes count, what is at risk, which
plans apply KX, what a goal statement leaves out, and the policy data they read."""

from __future__ import annotations

from dataclasses import replace

import pytest

from plugin.errors import PolicyError
from plugin.narrative import PhraseMatcher
from plugin.policy import load_policy
from plugin.review import review_bundle
from plugin.synthetic.resources import HCPCS
from plugin.synthetic.visit import VisitBuilder
from tests.rules import cases


def _service(report, code):
    return next(s for s in report.services if s.code == code)


def test_timed_minutes_during_a_supervised_modality_count_and_its_own_do_not():
    """NCCI ch.XI: 97112 09:05-09:30 during G0283 09:00-09:15 keeps its 25 minutes (2 units);
    the 15 e-stim minutes are untimed and never timed minutes."""
    report = review_bundle(cases.estim_during_timed()[0])
    assert _service(report, "97112").minutes == 25
    assert _service(report, "97112").supported_units == 2
    assert report.total_timed_minutes == 25 and report.total_timed_units == 2
    assert not _service(report, "G0283").timed


def test_an_evaluation_still_takes_its_minutes_from_a_timed_code():
    report = review_bundle(cases.evaluation_overlapping()[0])
    assert _service(report, "97112").minutes == 14  # 09:30-09:44 outside the evaluation


def _pta_lines(*units_per_line: int, cq_on_first: bool = False):
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:30", performer="PTA")
    for n, units in enumerate(units_per_line):
        mods = ("GP", "CQ") if cq_on_first and n == 0 else ("GP",)
        b.line("97112", units, mods=mods, amount=35.0 * units)
    return review_bundle(b.bundle())


def test_a_missing_cq_puts_15_percent_of_each_affected_line_at_risk():
    """Contract §2b: CQ/CO lines are paid at 85%, so 15% of each line that lacks it."""
    report = _pta_lines(1, 1)
    (finding,) = [f for f in report.findings if f.rule == "missing-assistant-modifier"]
    assert [round(amount, 2) for _, amount in finding.at_risk] == [5.25, 5.25]
    assert len({ref for ref, _ in finding.at_risk}) == 2
    assert report.dollars_at_risk == pytest.approx(10.5)


def test_only_the_lines_without_cq_are_at_risk():
    report = _pta_lines(1, 1, cq_on_first=True)
    (finding,) = [f for f in report.findings if f.rule == "missing-assistant-modifier"]
    assert len(finding.at_risk) == 1 and finding.at_risk[0][1] == pytest.approx(5.25)


def test_a_medicare_advantage_plan_is_read_for_kx_only_where_the_payer_table_says_so():
    bundle, _ = cases._kx(2450.0, sopt="111", payer="Acme Medicare Advantage HMO")
    plain = review_bundle(bundle)
    assert plain.visit.spend.medicare_advantage and not plain.visit.spend.lines
    marked = review_bundle(bundle, policy=cases._advantage_with_kx())
    assert marked.visit.spend.medicare_advantage and marked.visit.spend.lines
    assert [f.rule for f in marked.findings] == ["missing-kx"]


def test_the_payer_table_kx_flag_is_read_from_payers_toml():
    policy = load_policy()
    assert policy.kx_advantage_payers == ()  # no plan is marked in the shipped table
    assert policy.kx_for_advantage("Acme Medicare Advantage HMO") is False
    marked = replace(policy, kx_advantage_payers=("acme medicare advantage",))
    assert marked.kx_for_advantage("ACME Medicare Advantage HMO") is True
    assert marked.kx_for_advantage(None) is False


def test_a_modifier_indicator_0_pair_without_a_modifier_says_to_remove_the_code():
    report = review_bundle(cases._eval_and_97750(("GP",))[0])
    (finding,) = report.findings
    assert finding.rule == "missing-distinct-modifier" and finding.fix.startswith("Remove 97750")


def test_se1418_split_blocks_bill_both_codes():
    report = review_bundle(cases.se1418_split_blocks()[0])
    assert report.verdict == "supported"
    assert _service(report, "97140").minutes == 15 and _service(report, "97530").minutes == 15


@pytest.fixture(scope="module")
def matcher():
    return PhraseMatcher(load_policy())


@pytest.mark.parametrize(
    ("text", "read"),
    [
        (
            "Perturbation with tactile cues. Goal: ambulate community distances without loss of "
            "balance in 6 weeks.",
            "perturbation with tactile cues. .",
        ),
        ("STG 2: SLS 10 s; pt tolerated tx.", "; pt tolerated tx."),
        ("Pt will perform HEP independently. Tolerated well.", ". tolerated well."),
        ("Pt met STG 1: ambulate 150 ft with SBA.", "pt met stg 1  ambulate 150 ft with sba."),
        ("Goal 2 partially met; SLS 8 s.", "goal 2 partially met; sls 8 s."),
        ("Progressing toward goals, LOB x2.", "progressing toward goals, lob x2."),
        ("Goal of SLS 10 s", ""),  # no sentence end: the goal runs to the end of the text
    ],
)
def test_goal_statements_are_left_out_to_the_end_of_their_sentence(matcher, text, read):
    assert matcher.without_goals(text) == read


def test_every_goal_of_a_long_text_is_left_out_and_every_result_kept(matcher):
    text = "Pt stable. Goal: SLS 10 s. STG 1 met. " * 2000
    assert matcher.without_goals(text) == "pt stable. . stg 1 met. " * 2000


def test_untimed_documentation_must_name_phrase_lists(tmp_path, monkeypatch):
    from plugin.policy import loader

    real = loader._read_toml

    def broken(name):
        table = real(name)
        if name == "narrative.toml":
            table = {**table, "untimed_documentation": {"G0283": "no_such_list"}}
        return table

    monkeypatch.setattr(loader, "_read_toml", broken)
    loader.load_policy.cache_clear()
    try:
        with pytest.raises(PolicyError, match="no_such_list"):
            loader.load_policy(str(tmp_path))
    finally:
        loader.load_policy.cache_clear()


def test_evaluation_codes_and_schedule_come_from_codes_toml():
    policy = load_policy()
    assert {c for c, d in policy.evaluations.items() if d == "PT"} == {
        "97161",
        "97162",
        "97163",
        "97164",
    }
    assert policy.reevaluations == {"97164", "97168"}
    assert policy.untimed_documentation["G0283"] == "untimed_estim"
    assert "97010" not in policy.untimed_exclusive and "97161" in policy.untimed_exclusive


def test_e_stim_named_in_another_procedure_note_of_the_day_documents_it():
    b = VisitBuilder(visit_note="Visit note. Total treatment time 45 min. Signed.", length=45)
    b.proc("97112", "09:00", "09:24", note="Balance work with cues; tolerated. Premod to low back.")
    item = b.line("G0283", 1)
    item["productOrService"]["coding"][0]["system"] = HCPCS
    b.line("97112", 2)
    assert "untimed-undocumented" not in {f.rule for f in review_bundle(b.bundle()).findings}
