"""Per-clinic scheduling options, kept in ``Clinic.settings["scheduling"]``."""

from .choices import WaitlistOfferMode

DEFAULTS = {
    "slot_step_minutes": 15,  # availability is offered on this grid
    "work_on_holidays": False,  # national holidays are closed unless the clinic opts in
    "waitlist_offer_mode": WaitlistOfferMode.ONE,
    "waitlist_offer_minutes": 30,  # how long a waitlist offer stays open
    "no_show_grace_minutes": 30,  # after the end, with no arrival, an appointment is a no-show
}


def clinic_option(clinic, name: str):
    """The clinic's value of a scheduling option, or its default."""
    if name not in DEFAULTS:
        raise KeyError(name)
    return ((clinic.settings or {}).get("scheduling") or {}).get(name, DEFAULTS[name])
