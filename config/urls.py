"""Routes: admin, health, REST API (config/api.py), the patient portal (config/portal_urls.py),
inbound webhooks."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from clinic.accounts import urls as accounts_urls
from integrations import event_schemas

from . import health, metrics

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    # Staff security (clinic.accounts): the two-step sign-in replaces the admin's login and
    # logout, so it comes before the admin site; then the account pages and passkeys.
    path("admin/", include((accounts_urls.sign_in_urlpatterns, "accounts_sign_in"))),
    path("admin/", admin.site.urls),
    path("account/", include("clinic.accounts.urls")),
    path("webauthn/", include((accounts_urls.webauthn_urlpatterns, "otp_webauthn"))),
    path("health/", health.health, name="health"),
    path("health/integrations", health.integrations, name="health-integrations"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/v1/", include("config.api")),
    path("portal/", include("config.portal_urls")),
    # The documented addresses of the schema and its docs (also under /api/v1/).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The webhooks' JSON Schemas, one per event type (integrations/event_schemas.py).
    path("api/schema/events/", event_schemas.event_schemas_index, name="event-schemas"),
    path(
        "api/schema/events/<str:event_type>.json", event_schemas.event_schema, name="event-schema"
    ),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # E-mail tracking (delivered, opened, bounced…) from each ESP, verified by anymail with
    # ANYMAIL_WEBHOOK_SECRET (HTTP basic auth); before the generic provider webhooks.
    path("webhooks/anymail/", include("anymail.urls")),
    path("webhooks/", include("integrations.urls")),
    path("", include("crm.urls")),  # /crm/form/<key>/: the lead form clinics embed
    path("", include("scheduling.urls")),  # /agenda/feed/<token>.ics, /agenda/appointment/…
    path("i18n/", include("django.conf.urls.i18n")),
]
