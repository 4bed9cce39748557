"""Version 1 of each consent form, used until a clinic administrator publishes its own wording.

The wording follows the points the consensus statements ask consent to cover (reference §2:
off-label use, expected effects, dissociation, blood pressure, monitoring, transport; for
esketamine the REMS requirements of reference §4). Clinics should have it reviewed locally.
"""

from __future__ import annotations

from types import MappingProxyType

from ketaclinic.screening.choices import ConsentKind

KETAMINE_OFF_LABEL = """\
Consent to treatment with racemic ketamine (off-label use)

1. Ketamine is approved by the FDA as an anaesthetic. Its use for depression, post-traumatic \
stress, obsessive-compulsive disorder, anxiety or chronic pain is "off-label": it is not FDA \
approved for these conditions. My clinician has explained the evidence for and against it and \
the other treatments available to me.
2. Common effects during and shortly after a dose include dissociation (feeling detached or \
unreal), changes in perception, dizziness, nausea, drowsiness and a rise in blood pressure and \
heart rate. These usually pass within one to two hours.
3. Less common risks include a large rise in blood pressure, breathing problems, emergence \
reactions, worsening mood or suicidal thoughts, bladder problems with repeated use, liver \
problems, and misuse. Ketamine is a Schedule III controlled substance.
4. I will be monitored (blood pressure, heart rate and oxygen level) during the treatment and \
until I am ready to leave. I will not drive, operate machinery or make important decisions \
until the next day after a restful sleep, and an adult will take me home.
5. I will tell the clinic about all my medicines, alcohol and drug use, pregnancy or \
breastfeeding. I can stop treatment at any time, and I can withdraw this consent at any time.
"""

ESKETAMINE = """\
Consent to treatment with esketamine nasal spray (Spravato)

1. Esketamine nasal spray is FDA approved for adults with treatment-resistant depression and, \
with an oral antidepressant, for depressive symptoms with acute suicidal thoughts or behaviour.
2. I will use the spray myself under the direct supervision of a healthcare provider at this \
clinic, which is certified in the Spravato REMS program. I must be enrolled in the REMS program \
before my first treatment. The medicine is never given to me to take home.
3. After each dose I will be observed for at least 2 hours and until the clinician says I am \
ready to leave. Sedation, dissociation, breathing problems, dizziness, nausea and a rise in \
blood pressure are common and usually pass within that time.
4. Other risks include misuse, worsening depression or suicidal thoughts, bladder problems and \
effects on attention and judgement. Esketamine is a Schedule III controlled substance.
5. I will not drive or operate machinery until the next day after a restful sleep, and I will \
arrange for someone to take me home after each treatment.
6. I can stop treatment at any time, and I can withdraw this consent at any time.
"""

DEFAULT_TEXTS = MappingProxyType(
    {
        ConsentKind.KETAMINE_OFF_LABEL: (
            "Racemic ketamine: off-label treatment consent",
            KETAMINE_OFF_LABEL,
        ),
        ConsentKind.ESKETAMINE: ("Esketamine (Spravato) treatment consent", ESKETAMINE),
    }
)
