"""Which scores are compared (baseline, end of induction) and what the clinical rules say of
them: status, relapse, late response. Pure: no database."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest

from ketaclinic.clinical import INSTRUMENTS, ClinicalSettings, classify_change
from ketaclinic.measures import charts, questionnaire
from ketaclinic.measures.timeline import build_timeline
from ketaclinic.measures.trajectories import ScorePoint, trajectory

MONDAY = date(2026, 6, 1)


def points(*pairs: tuple[int, int], flags: tuple[str, ...] = ()) -> list[ScorePoint]:
    """(days after MONDAY, total) pairs."""
    return [
        ScorePoint(
            response_id=index,
            completed_at=datetime.combine(MONDAY + timedelta(days=day), time(12), tzinfo=UTC),
            day=MONDAY + timedelta(days=day),
            total=total,
            severity="",
            flags=flags,
        )
        for index, (day, total) in enumerate(pairs, start=1)
    ]


IV = build_timeline("iv_ketamine_induction", MONDAY)


def test_baseline_is_the_last_score_on_or_before_the_first_session():
    result = trajectory("phq9", points((-7, 22), (-2, 20), (0, 19), (10, 9)), IV)
    assert result.baseline is not None and result.baseline.total == 19
    assert result.latest is not None and result.latest.total == 9
    assert result.status == classify_change("phq9", 19, 9) == "response"
    assert result.change_pct == -53


def test_no_baseline_without_a_score_before_the_course():
    result = trajectory("phq9", points((3, 15), (10, 9)), IV)
    assert result.baseline is None and result.status is None
    assert "baseline" in result.status_note


def test_no_course_means_no_status():
    result = trajectory("phq9", points((-3, 15), (10, 9)), None)
    assert result.status is None and "No treatment course" in result.status_note


def test_baseline_zero_cannot_measure_change():
    result = trajectory("phq9", points((-3, 0), (10, 4)), IV)
    assert result.status is None and "0" in result.status_note


def test_instruments_without_cut_offs_have_no_status():
    result = trajectory("pcl5", points((-3, 50), (10, 20)), IV)
    assert result.cutoffs is None and result.status is None
    assert len(result.points) == 2


def test_relapse_after_response_is_dated_by_detect_relapse():
    # Response by day 10, then two scores 7 days apart at/above 10 and short of response.
    result = trajectory("phq9", points((-2, 20), (10, 8), (24, 6), (38, 12), (45, 14)), IV)
    assert result.relapse_on == MONDAY + timedelta(days=45)
    assert result.status == classify_change("phq9", 20, 14) == "partial"


def test_no_relapse_when_the_two_high_scores_are_too_far_apart():
    result = trajectory("phq9", points((-2, 20), (10, 8), (38, 12), (60, 14)), IV)
    assert result.relapse_on is None


def test_late_responder_needs_more_than_six_sessions():
    eske = build_timeline("esketamine_trd", MONDAY, weeks=12)
    sessions = [s.on for s in eske.sessions]
    # Response first seen on the day of session 8 (7 sessions before that day).
    day8 = (sessions[7] - MONDAY).days
    late = trajectory("phq9", points((-1, 20), ((sessions[3] - MONDAY).days, 18), (day8, 9)), eske)
    assert late.first_response_after_sessions == 7
    assert late.late_responder
    day4 = (sessions[3] - MONDAY).days
    early = trajectory("phq9", points((-1, 20), (day4, 9)), eske)
    assert early.first_response_after_sessions == 3
    assert not early.late_responder


def test_end_of_induction_score_is_the_first_within_14_days_after_the_last_induction_session():
    last = (IV.sessions[-1].on - MONDAY).days
    result = trajectory("phq9", points((-1, 20), (last, 13), (last + 2, 4), (last + 20, 15)), IV)
    assert result.end_of_induction is not None and result.end_of_induction.total == 4
    assert result.end_of_induction_status == "remission"


def test_clinic_madrs_cut_off_changes_remission():
    series = points((-1, 30), (14, 11))
    assert trajectory("madrs", series, IV).status == "remission"  # <= 12 by default
    strict = ClinicalSettings(madrs_remission_max=10)
    assert trajectory("madrs", series, IV, settings=strict).status == "response"


def test_chart_draws_bands_baseline_sessions_and_relapse():
    result = trajectory("phq9", points((-2, 20), (10, 8), (24, 6), (38, 12), (45, 14)), IV)
    chart = charts.trajectory_chart(result, IV, today=MONDAY + timedelta(days=50), chart_id="c")
    assert [band.label for band in chart.bands] == [b.label for b in INSTRUMENTS["phq9"].bands]
    assert len(chart.sessions) == 6
    assert "IV 0.5 mg/kg" in chart.sessions[0].title
    assert [line.kind for line in chart.lines] == ["baseline", "response", "remission"]
    assert [event.title for event in chart.events] == ["Relapse"]
    assert len(chart.dots) == 5 and chart.polyline.count(",") == 5
    # Lower scores sit lower on the chart; every point is inside the plot.
    ys = {d.title.split(": ")[1].split(" ")[0]: d.y for d in chart.dots}
    assert ys["6"] > ys["20"]
    assert all(chart.plot_left <= d.x <= chart.plot_right for d in chart.dots)
    assert all(chart.plot_top <= d.y <= chart.plot_bottom for d in chart.dots)
    compact = charts.trajectory_chart(
        result, IV, today=MONDAY + timedelta(days=50), chart_id="c", width=400, height=280
    )
    assert compact.width == 400 and compact.plot_right == 400 - charts.RIGHT


def test_two_years_of_weekly_scores_chart_with_monthly_ticks():
    weekly = points(*[(7 * k - 1, 10 + (k % 5)) for k in range(0, 105)])
    result = trajectory("phq9", weekly, IV)
    chart = charts.trajectory_chart(result, IV, today=MONDAY + timedelta(days=740), chart_id="c")
    assert len(chart.dots) == 105
    assert 6 <= len(chart.x_ticks) <= 14


def test_charts_of_one_page_share_markers_and_draw_what_each_would_alone():
    """A page's charts over the same days place and write the session markers and month ticks
    once (`memo`), and every chart's SVG is the one drawn without the shared work or the
    pre-written dot coordinates."""
    from dataclasses import replace

    today = MONDAY + timedelta(days=740)
    phq9 = trajectory("phq9", points(*[(7 * k - 1, 10 + (k % 5)) for k in range(105)]), IV)
    gad7 = trajectory("gad7", points(*[(7 * k - 1, 5 + (k % 7)) for k in range(105)]), IV)
    madrs = trajectory("madrs", points(*[(28 * k + 6, 20 + (k % 9)) for k in range(26)]), IV)
    memo = charts.SharedParts()
    drawn = [
        charts.trajectory_chart(item, IV, today=today, chart_id=f"c{i}", memo=memo)
        for i, item in enumerate((phq9, gad7, madrs))
    ]
    # PHQ-9 and GAD-7 span the same days: one entry each for markers and ticks; MADRS starts a
    # week later: its own.
    assert (len(memo.sessions), len(memo.ticks)) == (2, 2)
    assert drawn[0].sessions_svg is drawn[1].sessions_svg and drawn[0].sessions_svg
    assert drawn[0].x_ticks is drawn[1].x_ticks
    for i, (item, chart) in enumerate(zip((phq9, gad7, madrs), drawn, strict=True)):
        alone = charts.trajectory_chart(item, IV, today=today, chart_id=f"c{i}")
        assert alone == chart and alone.svg() == chart.svg()
        bare = replace(chart, sessions_svg="")
        assert bare.svg() == chart.svg() and "<g><title>Session 1 " in bare.svg()
        circles = re.findall(
            r'<circle cx="([\d.]+)" cy="([\d.]+)".*?<title>(.*?)</title>', chart.dots_svg
        )
        assert [(float(x), float(y), t.split(" &#183; ")[0]) for x, y, t in circles] == [
            (d.x, d.y, d.title) for d in chart.dots
        ]
        assert chart.polyline.split(" ")[0] == f"{chart.dots[0].x},{chart.dots[0].y}"


def test_the_charts_of_a_page_share_one_time_axis():
    """On the chart page and the progress report, every instrument is drawn over the days of
    them all, so a day sits at the same place on each chart; alone, MADRS (scored monthly,
    from a week after the first PHQ-9) would have its own axis."""
    from zoneinfo import ZoneInfo

    from ketaclinic.measures.chart_panel import trajectory_views
    from ketaclinic.measures.selectors import PatientOutcomes

    today = MONDAY + timedelta(days=740)
    phq9 = trajectory("phq9", points(*[(7 * k - 1, 10 + (k % 5)) for k in range(105)]), IV)
    madrs = trajectory("madrs", points(*[(28 * k + 6, 20 + (k % 9)) for k in range(20)]), IV)
    outcomes = PatientOutcomes(
        patient=None,  # type: ignore[arg-type]  # read only for response links
        enrolment=None,
        timeline=IV,
        trajectories=(phq9, madrs),
        tz=ZoneInfo("UTC"),
    )
    first, second = (view["chart"] for view in trajectory_views(outcomes, today))
    assert first.x_ticks == second.x_ticks and first.sessions == second.sessions
    x_of = {d.title[:10]: d.x for d in first.dots}  # the day: YYYY-MM-DD
    shared_days = [d for d in second.dots if d.title[:10] in x_of]
    assert shared_days and all(x_of[d.title[:10]] == d.x for d in shared_days)
    alone = charts.trajectory_chart(madrs, IV, today=today, chart_id=second.chart_id)
    assert alone.x_ticks != second.x_ticks
    # What the page shares changes no pixel: drawn alone over the same days, the same SVG.
    span = charts.chart_span([phq9, madrs], IV, today=today)
    redrawn = charts.trajectory_chart(madrs, IV, today=today, chart_id=second.chart_id, span=span)
    assert redrawn.svg() == second.svg()


def test_charts_are_the_svg_the_drawing_code_wrote_before_the_shared_parts():
    """tests/measures/reference/trajectory_charts.svg.txt holds the SVGs that the drawing code
    wrote before charts shared their markers and pre-wrote their dots (commit 11ebc01): three
    instruments over two timelines at both sizes, a flagged dot, a relapse and a mood chart."""
    from pathlib import Path

    reference = Path(__file__).parent / "reference" / "trajectory_charts.svg.txt"

    def series(*pairs: tuple[int, int], flag_at: tuple[int, ...] = ()) -> list[ScorePoint]:
        return [
            ScorePoint(
                index,
                datetime.combine(MONDAY + timedelta(days=day), time(12), tzinfo=UTC),
                MONDAY + timedelta(days=day),
                total,
                "moderate" if total > 9 else "",
                ("suicidal_ideation",) if index in flag_at else (),
            )
            for index, (day, total) in enumerate(pairs, start=1)
        ]

    esketamine = build_timeline("esketamine_trd", MONDAY, weeks=30)
    today = MONDAY + timedelta(days=220)
    phq9 = [20, 18, 12, 8, 6, 9, 12, 14, 13, 11]
    phq9_series = series(*[(7 * k - 2, phq9[k % 10]) for k in range(30)], flag_at=(3,))
    gad7_series = series(*[(7 * k - 2, 5 + (k % 7)) for k in range(30)])
    madrs_series = series(*[(28 * k + 5, 20 + (k % 9)) for k in range(8)])
    items = (
        (trajectory("phq9", phq9_series, esketamine), esketamine),
        (trajectory("gad7", gad7_series, esketamine), esketamine),
        (trajectory("madrs", madrs_series, IV), IV),
    )
    drawn = []
    for width, height in (
        (charts.WIDTH, charts.HEIGHT),
        (charts.COMPACT_WIDTH, charts.COMPACT_HEIGHT),
    ):
        memo = charts.SharedParts()
        for index, (item, timeline) in enumerate(items):
            chart = charts.trajectory_chart(
                item,
                timeline,
                today=today,
                chart_id=f"c{index}",
                width=width,
                height=height,
                memo=memo,
            )
            drawn.append(str(chart.svg()))
    mood = [
        (MONDAY + timedelta(days=k), k % 11, f"mood {k % 11}/10 <&>", k == 4) for k in range(30)
    ]
    drawn.append(
        str(
            charts.line_chart(
                chart_id="m",
                title="Mood",
                description="d",
                series=charts.Series(mood, 0, 10),
                start=MONDAY - timedelta(days=1),
                end=MONDAY + timedelta(days=31),
            ).svg()
        )
    )
    # The same characters, now written in ASCII: "−" as &#8722; (charts.escape).
    written = reference.read_text().encode("ascii", "xmlcharrefreplace").decode("ascii")
    assert "\n".join(drawn) + "\n" == written and "&#8722;50%" in written
    assert all(chart.isascii() for chart in drawn)
    assert "safety item positive" in drawn[0] and "Relapse" in reference.read_text()


@pytest.mark.parametrize(
    ("answers", "asked"),
    [
        ({}, ["q1", "q2", "q6"]),
        ({"q2": 1}, ["q1", "q2", "q3", "q4", "q5", "q6"]),
        ({"q2": 0, "q6": 1}, ["q1", "q2", "q6", "q6_past_3_months"]),
    ],
)
def test_cssrs_asks_follow_up_questions_only_when_they_apply(answers, asked):
    definition = INSTRUMENTS["cssrs_screener"]
    assert [i.id for i in questionnaire.applicable_items(definition, answers)] == asked


def test_changing_cssrs_question_2_to_no_drops_the_follow_up_answers():
    definition = INSTRUMENTS["cssrs_screener"]
    answers = {"q1": 1, "q2": 1, "q3": 1, "q4": 0, "q5": 0}
    assert questionnaire.with_answer(definition, answers, "q2", 0) == {"q1": 1, "q2": 0}
    assert questionnaire.scoring_answers(definition, {"q1": 1, "q2": 0}) == {
        "q1": True,
        "q2": False,
    }


def test_progress_points_at_the_first_unanswered_item():
    definition = INSTRUMENTS["phq9"]
    step = questionnaire.progress(definition, {"q1": 0, "q2": 1})
    assert (step.item and step.item.id, step.position, step.total, step.percent) == (
        "q3",
        3,
        9,
        22,
    )
    done = questionnaire.progress(definition, {f"q{i}": 0 for i in range(1, 10)})
    assert done.item is None


def test_licensed_instruments_cannot_be_patient_reported():
    assert questionnaire.patient_can_answer("phq9")
    assert not questionnaire.patient_can_answer("madrs")
    assert not questionnaire.patient_can_answer("qids_sr16")
    assert (
        questionnaire.patient_prompt(
            INSTRUMENTS["cssrs_screener"], INSTRUMENTS["cssrs_screener"].items[0]
        )
        == "In the past month:"
    )
