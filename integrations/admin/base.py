"""What every integrations ModelAdmin stands on."""

from django.conf import settings
from django.utils.module_loading import import_string

# Tenancy lives in the clinic app, a layer above this one; the composition root names the
# scoping admin in settings so that this app imports no domain app (DESIGN.md "Layers").
# It limits changelists, change views (404), autocomplete and FK choices to the user's clinic.
ClinicScopedAdmin = import_string(settings.CUIDAR_SCOPED_ADMIN)
