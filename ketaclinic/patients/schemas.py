from datetime import date, datetime

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator

from ketaclinic.patients.choices import SexAtBirth


class PatientOut(Schema):
    id: int
    clinic_id: int
    mrn: str
    first_name: str
    last_name: str
    preferred_name: str
    date_of_birth: date
    sex_at_birth: SexAtBirth
    pronouns: str
    phone: str
    email: str
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    emergency_contact_name: str
    emergency_contact_relationship: str
    emergency_contact_phone: str
    created_at: datetime
    updated_at: datetime


class _PatientFields(Schema):
    model_config = ConfigDict(extra="forbid")

    mrn: str | None = Field(None, max_length=20)
    preferred_name: str | None = Field(None, max_length=100)
    sex_at_birth: SexAtBirth | None = None
    pronouns: str | None = Field(None, max_length=40)
    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=254)
    address_line1: str | None = Field(None, max_length=200)
    address_line2: str | None = Field(None, max_length=200)
    city: str | None = Field(None, max_length=100)
    state: str | None = Field(None, max_length=50)
    postal_code: str | None = Field(None, max_length=20)
    emergency_contact_name: str | None = Field(None, max_length=200)
    emergency_contact_relationship: str | None = Field(None, max_length=60)
    emergency_contact_phone: str | None = Field(None, max_length=40)


class PatientCreate(_PatientFields):
    clinic_id: int
    first_name: str = Field(..., min_length=1, max_length=100)
    last_name: str = Field(..., min_length=1, max_length=100)
    date_of_birth: date


class PatientUpdate(_PatientFields):
    first_name: str | None = Field(None, min_length=1, max_length=100)
    last_name: str | None = Field(None, min_length=1, max_length=100)
    date_of_birth: date | None = None


class PatientFilters(Schema):
    q: str = Field("", max_length=100, description="Name words, MRN, or a date of birth")
    date_of_birth: date | None = None
    mrn: str = Field("", max_length=20)
    clinic_id: int | None = None

    @field_validator("q", "mrn")
    @classmethod
    def _no_null_character(cls, value: str) -> str:
        # PostgreSQL rejects NUL in a query parameter: without this the search answers 500.
        if "\x00" in value:
            raise ValueError("Remove the null character.")
        return value
