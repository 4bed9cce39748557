from django import forms

from ketaclinic.accounts.models import Clinic
from ketaclinic.core import python_widgets
from ketaclinic.patients.models import Patient
from ketaclinic.patients.services import EDITABLE_FIELDS


class PatientForm(forms.ModelForm):
    class Meta:
        model = Patient
        fields = list(EDITABLE_FIELDS)
        widgets = {
            "date_of_birth": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "phone": forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
            "emergency_contact_phone": forms.TextInput(attrs={"type": "tel"}),
        }
        help_texts = {"mrn": "Leave blank to issue the next medical record number."}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["mrn"].required = False

    def _post_clean(self) -> None:
        # Model validation and uniqueness run in the service, inside its transaction.
        pass


class PatientCreateForm(PatientForm):
    clinic = forms.ModelChoiceField(queryset=Clinic.objects.none(), empty_label=None)

    def __init__(self, *args: object, clinics: object = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics  # type: ignore[attr-defined]
        self.order_fields(["clinic", *EDITABLE_FIELDS])


class PatientSearchForm(python_widgets.PythonLabels, forms.Form):
    """On every patient-list request: widgets and labels are written in Python
    (core.python_widgets), and the empty form's HTML once per process (static_html)."""

    static_html = True

    q = forms.CharField(
        required=False,
        label="Name, MRN or date of birth",
        widget=python_widgets.TextInput(attrs={"type": "search", "autofocus": True}),
    )
    dob = forms.DateField(
        required=False,
        label="Date of birth",
        widget=python_widgets.DateInput(attrs={"type": "date"}),
    )
    mrn = forms.CharField(
        required=False, label="MRN", max_length=20, widget=python_widgets.TextInput
    )
