"""Demo data of messaging, found by ``manage.py seed_demo``: Sofia, the assistant, switched
on in the demo clinics (a new clinic has it off until it decides). Idempotent."""

from .assistant.models import AssistantSettings


def seed_demo(*, clinics, rng, stdout) -> None:
    for clinic in clinics:
        AssistantSettings.objects.get_or_create(
            clinic=clinic,
            defaults={
                "enabled": True,
                "hours_text": "seg a sex, 8h às 18h",
            },
        )
    stdout.write(f"  assistant (Sofia) on in {len(clinics)} demo clinic(s)")
