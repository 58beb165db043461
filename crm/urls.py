"""Public routes of the CRM: the lead form clinics embed on their sites."""

from django.urls import path

from . import public

app_name = "crm"

urlpatterns = [
    path("crm/form/<str:key>/", public.lead_form, name="lead-form"),
]
