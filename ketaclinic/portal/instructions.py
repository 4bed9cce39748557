"""What patients read before and after a treatment, per treatment code (clinical.TREATMENTS).

Plain language, second person. The label facts are cited (reference §1b, §3, §10 rule 11); the
rest is clinic convention [U] a clinic may reword. Never a dose or a schedule: those come from the
patient's own course.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instructions:
    title: str
    before: tuple[str, ...]
    what_to_expect: tuple[str, ...]
    after: tuple[str, ...]
    sources: tuple[str, ...]


# No driving or machinery until the next day after restful sleep; arrange a ride home
# (Spravato PI §17, REMS; the same convention for racemic ketamine; reference §3, §10 rule 11).
_RIDE_AND_DRIVING = (
    "Arrange for someone to take you home. You cannot leave alone or take a taxi by yourself.",
    "Do not drive, cycle or operate machinery until the next day, after a restful night's sleep.",
)
_AFTER_COMMON = (
    "Rest for the rest of the day. Have someone with you for the first few hours if you can.",
    "Avoid alcohol, cannabis and sleeping pills or other sedatives for the rest of the day "
    "unless your prescriber has told you otherwise.",
    "Do not make important decisions or sign documents until the next day.",
    "Feeling a little dizzy, tired, sick or 'unreal' is common and usually passes within a few "
    "hours. If it does not pass, or you have chest pain, a severe headache, trouble breathing "
    "or confusion, call 911.",
    "Call the clinic if you have pain or burning when passing urine, need to go much more often, "
    "or see blood in your urine.",
)

_IV = Instructions(
    title="Ketamine infusion",
    before=(
        "Do not eat for 4 hours before your infusion. You may drink clear fluids until 2 hours "
        "before.",
        "Take your usual medicines unless your prescriber told you to pause one. Tell the nurse "
        "about any new medicine.",
        *_RIDE_AND_DRIVING,
        "Wear comfortable clothes with sleeves that roll up easily.",
    ),
    what_to_expect=(
        "A nurse checks your blood pressure, pulse and oxygen, and asks how you feel today.",
        "The infusion runs for about 40 minutes through a small tube in your arm. Your blood "
        "pressure is checked regularly while it runs and afterwards.",
        "Many people feel floaty, detached or see the room differently during the infusion. This "
        "wears off soon after it ends.",
        "You stay until you are steady and your checks are back to normal, usually 30 to 60 "
        "minutes after the infusion ends.",
    ),
    after=_AFTER_COMMON,
    sources=(
        "Reference §1a and §3 (monitoring, recovery); fasting times are clinic convention [U].",
        "No driving until the next day after restful sleep (reference §3, §10 rule 11).",
    ),
)

_ESKETAMINE = Instructions(
    title="Esketamine (Spravato) nasal spray",
    before=(
        "Do not eat for 2 hours before your session, and do not drink anything for 30 minutes "
        "before (Spravato label).",
        "If you use a nasal steroid or decongestant spray, use it at least 1 hour before.",
        *_RIDE_AND_DRIVING,
        "Plan to be at the clinic for at least 2 and a half hours.",
    ),
    what_to_expect=(
        "A nurse checks your blood pressure before the first spray and again about 40 minutes "
        "after it.",
        "You use each nasal spray device yourself, with the nurse watching; you wait 5 minutes "
        "between devices.",
        "Sleepiness, dizziness and feeling detached are common in the first hour.",
        "By law you are observed for at least 2 hours after the first spray, until the nurse "
        "and prescriber say you are ready to leave.",
    ),
    after=_AFTER_COMMON,
    sources=(
        "Spravato label: food 2 h, liquids 30 min, nasal sprays 1 h before (reference §1b).",
        "REMS: at least 2 hours of observation; no driving until the next day after restful "
        "sleep (reference §3, §10 rules 5 and 11).",
    ),
)

_IM = Instructions(
    title="Ketamine injection (IM)",
    before=_IV.before[:4],
    what_to_expect=(
        "A nurse checks your blood pressure, pulse and oxygen first.",
        "You receive an injection into the muscle of your arm or thigh; the effects start within "
        "minutes and last about an hour.",
        "You stay until you are steady and your checks are back to normal.",
    ),
    after=_AFTER_COMMON,
    sources=_IV.sources,
)

_ORAL = Instructions(
    title="Ketamine by mouth (supervised)",
    before=(
        "Do not eat for 2 hours before your dose unless your prescriber says otherwise.",
        *_RIDE_AND_DRIVING,
    ),
    what_to_expect=(
        "You take your dose at the clinic, where a nurse checks on you.",
        "Effects come on more slowly than with an infusion and can last a few hours.",
    ),
    after=_AFTER_COMMON,
    sources=("Reference §1c (oral route, clinic-defined protocol) [U].", *_IV.sources[1:]),
)

BY_TREATMENT = {
    "iv_ketamine": _IV,
    "im_ketamine": _IM,
    "oral_ketamine": _ORAL,
    "esketamine_trd": _ESKETAMINE,
    "esketamine_mdsi": _ESKETAMINE,
}


def for_treatment(code: str) -> Instructions | None:
    return BY_TREATMENT.get(code)
