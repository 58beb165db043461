"""The kernel: what every app may import, integrations included (docs/architecture.md).

A plain package with no models and no AppConfig; it imports no app (``lint-imports`` checks
it): the root of the error hierarchy, the tenancy queryset, the shared Redis client, the
clinic time-zone helpers and the two small admin-view helpers."""
