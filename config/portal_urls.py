"""The patient portal at /portal/: each app's portal pages, joined under the ``portal``
namespace (the layer rules keep apps from importing each other's views)."""

from billing import portal as billing_portal
from clinic.portal import profile as clinic_profile
from clinic.portal import signin as clinic_signin
from loyalty import portal as loyalty_portal
from scheduling import portal as scheduling_portal

from . import portal as home

app_name = "portal"

urlpatterns = [
    *home.urlpatterns,
    *clinic_signin.urlpatterns,
    *clinic_profile.urlpatterns,
    *scheduling_portal.urlpatterns,
    *billing_portal.urlpatterns,
    *loyalty_portal.urlpatterns,
]
