"""The partner REST API (``/api/v1/``): each app's ``api.py`` registers its routes here.

The OpenAPI schema is served at ``/api/v1/schema/`` and browsable docs at ``/api/v1/docs/``.
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

router = DefaultRouter()

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    *router.urls,
]
