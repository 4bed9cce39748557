"""PCL-5, PTSD Checklist for DSM-5 (20 items, 0-4 each, total 0-80).

Clusters (subscores): B intrusion items 1-5, C avoidance 6-7, D negative alterations in
cognition and mood 8-14, E arousal and reactivity 15-20. There are no empirically derived
severity bands; a total of 31-33 or more suggests provisional PTSD (Weathers et al. 2013,
National Center for PTSD; reference §5) [V]. The flag ``probable_ptsd`` uses
``ClinicalSettings.pcl5_probable_ptsd_min_total`` (default 33).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ketaclinic.clinical.instruments.base import (
    Answers,
    Instrument,
    Score,
    make_score,
    normalize_answers,
    numbered_items,
    score_options,
)
from ketaclinic.clinical.settings import ClinicalSettings

__all__ = ["CLUSTERS", "INSTRUMENT", "score"]

_OPTIONS = score_options(
    0, 4, ("Not at all", "A little bit", "Moderately", "Quite a bit", "Extremely")
)

_WORDINGS = (
    "Repeated, disturbing, and unwanted memories of the stressful experience?",
    "Repeated, disturbing dreams of the stressful experience?",
    "Suddenly feeling or acting as if the stressful experience were actually happening again "
    "(as if you were actually back there reliving it)?",
    "Feeling very upset when something reminded you of the stressful experience?",
    "Having strong physical reactions when something reminded you of the stressful experience "
    "(for example, heart pounding, trouble breathing, sweating)?",
    "Avoiding memories, thoughts, or feelings related to the stressful experience?",
    "Avoiding external reminders of the stressful experience (for example, people, places, "
    "conversations, activities, objects, or situations)?",
    "Trouble remembering important parts of the stressful experience?",
    "Having strong negative beliefs about yourself, other people, or the world (for example, "
    "having thoughts such as: I am bad, there is something seriously wrong with me, no one can "
    "be trusted, the world is completely dangerous)?",
    "Blaming yourself or someone else for the stressful experience or what happened after it?",
    "Having strong negative feelings such as fear, horror, anger, guilt, or shame?",
    "Loss of interest in activities that you used to enjoy?",
    "Feeling distant or cut off from other people?",
    "Trouble experiencing positive feelings (for example, being unable to feel happiness or "
    "have loving feelings for people close to you)?",
    "Irritable behavior, angry outbursts, or acting aggressively?",
    "Taking too many risks or doing things that could cause you harm?",
    'Being "superalert" or watchful or on guard?',
    "Feeling jumpy or easily startled?",
    "Having difficulty concentrating?",
    "Trouble falling or staying asleep?",
)

# DSM-5 symptom clusters by item number (Weathers 2013; reference §5) [V].
CLUSTERS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "B": (1, 2, 3, 4, 5),
        "C": (6, 7),
        "D": (8, 9, 10, 11, 12, 13, 14),
        "E": (15, 16, 17, 18, 19, 20),
    }
)

INSTRUMENT = Instrument(
    code="pcl5",
    title="PCL-5",
    items=numbered_items(20, _OPTIONS, _WORDINGS),
    score_range=(0, 80),
    source="Weathers et al. 2013, National Center for PTSD (reference §5) [V]",
    version="PCL-5 (2013), past month, without criterion A",
    licence="US Government work (VA National Center for PTSD), free to use [V]",
    respondent="patient",
    preamble="In the past month, how much were you bothered by:",
)


def score(answers: Answers, settings: ClinicalSettings) -> Score:
    """Sum the 20 items, give cluster B-E subscores and flag ``probable_ptsd``."""
    values = normalize_answers(INSTRUMENT, answers)
    total = sum(values.values())
    subscores = {
        cluster: sum(values[f"q{number}"] for number in numbers)
        for cluster, numbers in CLUSTERS.items()
    }
    flags = (
        frozenset({"probable_ptsd"})
        if total >= settings.pcl5_probable_ptsd_min_total
        else frozenset()
    )
    return make_score(INSTRUMENT, total, values, flags=flags, subscores=subscores)
