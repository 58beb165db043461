"""Per-clinic billing options, kept in ``Clinic.settings["billing"]``."""

DEFAULTS = {
    # Issue an NFS-e for every payment received (needs a fiscal provider account).
    "nfse_enabled": False,
    "nfse_service_code": "",  # item da lista de serviço (LC 116), e.g. "04.03"
    "nfse_municipal_tax_code": "",  # código tributário do município
    "nfse_iss_rate": "0",  # ISS rate in percent, e.g. "2.00"
    "nfse_description": "Serviços de saúde",  # used when a payment has no description
    # Whether a no-show or a late cancellation spends a package session.
    "package_consumes_on_no_show": False,
    "package_consumes_on_late_cancel": False,
    # Static PIX (no gateway): the clinic's key and the name and city shown by banks.
    "pix_key": "",
    "pix_merchant_name": "",
    "pix_merchant_city": "",
    # Days after the due date when reminders go (then a person takes over).
    "dunning_days": [1, 3, 7],
}


def billing_option(clinic, name: str):
    """The clinic's value of a billing option, or its default."""
    if name not in DEFAULTS:
        raise KeyError(name)
    return ((clinic.settings or {}).get("billing") or {}).get(name, DEFAULTS[name])
