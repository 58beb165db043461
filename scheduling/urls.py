"""Routes of the scheduling app outside the admin, included at the root by config/urls.py
(``path("", include("scheduling.urls"))``): calendar feeds, and the pages patients open from
the links in their reminders.

The admin page "Book a series" is not here: it lives in the admin site, see
:func:`scheduling.admin.series.series_urls`.
"""

from django.urls import path

from . import feeds, links

app_name = "scheduling"

urlpatterns = [
    # The token is the feed's only key (token_urlsafe: letters, digits, "-" and "_").
    path("agenda/feed/<slug:token>.ics", feeds.calendar_feed, name="calendar_feed"),
    path("agenda/appointment/<int:pk>.ics", feeds.appointment_ics, name="appointment_ics"),
    # Patients' one-click links from reminders (scheduling/links.py). The appointment token
    # is signed (letters, digits, "-", "_", ":" and "."); the offer token is the offer's own.
    path(
        "agenda/l/<str:action>/<str:token>/",
        links.appointment_link_page,
        name="appointment_link",
    ),
    path("agenda/offer/<str:token>/", links.offer_claim_page, name="offer_claim"),
]
