from ketaclinic.audit.models import AuditEvent


def test_nurse_opens_own_clinic_chart_and_gets_404_for_other_clinic(world, client_for):
    nurse = client_for("nurse")
    own = nurse.get(f"/patients/{world.patient_a2.pk}/")
    assert own.status_code == 200
    assert "Baker" in own.content.decode()
    other = nurse.get(f"/patients/{world.patient_b.pk}/")
    missing = nurse.get("/patients/999999/")
    assert other.status_code == missing.status_code == 404
    reads = AuditEvent.objects.filter(action="read", patient_id=world.patient_a2.pk)
    assert reads.count() == 1
