"""Routes of the scheduling app outside the admin, included at the root by config/urls.py
(``path("", include("scheduling.urls"))``).

The admin page "Book a series" is not here: it lives in the admin site, see
:func:`scheduling.series.series_urls`.
"""

from django.urls import path

from . import feeds

app_name = "scheduling"

urlpatterns = [
    # The token is the feed's only key (token_urlsafe: letters, digits, "-" and "_").
    path("agenda/feed/<slug:token>.ics", feeds.calendar_feed, name="calendar_feed"),
    path("agenda/appointment/<int:pk>.ics", feeds.appointment_ics, name="appointment_ics"),
]
