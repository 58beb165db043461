"""The partner REST API (``/api/v1/``): each app's ``api.py`` registers its routes here.

The OpenAPI schema is served at ``/api/v1/schema/`` and browsable docs at ``/api/v1/docs/``.
"""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from billing import api as billing_api
from clinic import api as clinic_api
from clinic.partner_api.views import api_fallback
from crm import api as crm_api
from integrations import api as integrations_api
from loyalty import api as loyalty_api
from scheduling import api as scheduling_api

router = DefaultRouter()

# Scheduling: services, professionals, availability, appointments.
router.register("services", scheduling_api.ServiceViewSet, basename="service")
router.register("professionals", scheduling_api.ProfessionalViewSet, basename="professional")
router.register("appointments", scheduling_api.AppointmentViewSet, basename="appointment")

# Patients, leads, payments; events, webhook subscriptions and dead letters (integrations).
router.register("patients", clinic_api.PatientViewSet, basename="patient")
router.register("leads", crm_api.LeadViewSet, basename="lead")
router.register("payments", billing_api.PaymentViewSet, basename="payment")
router.register("loyalty-accounts", loyalty_api.LoyaltyAccountViewSet, basename="loyalty-account")
router.register("events", integrations_api.EventViewSet, basename="event")
router.register("webhooks", integrations_api.WebhookSubscriptionViewSet, basename="webhook")
router.register("dlq", integrations_api.DeadLetterViewSet, basename="dead-letter")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    *router.urls,
]

# Scheduling: with or without the trailing slash (``/api/v1/availability?service=…``).
urlpatterns += [
    re_path(r"^availability/?$", scheduling_api.AvailabilityView.as_view(), name="availability"),
]

# Integrations health of the key's clinic (``/api/v1/health/integrations``).
urlpatterns += [
    re_path(
        r"^health/integrations/?$",
        integrations_api.IntegrationsHealthView.as_view(),
        name="api-health-integrations",
    ),
]

# Last: a path no route matched gets its trailing slash, or a problem+json 404.
urlpatterns += [re_path(r"^", api_fallback, name="api-fallback")]
