"""Celery tasks of the partner API: the request log's flush and purge. Their names keep
the ``clinic.`` prefix they had before this sub-app existed: beat rows and queued tasks in
the database name them."""

from celery import shared_task


@shared_task(name="clinic.api_request_log_flush")
def api_request_log_flush_task() -> int:
    """Periodic (every minute): write the partner API's request log buffered in Redis
    (``clinic.partner_api.request_log``); requests flush it too, each time it fills up."""
    from .request_log import api_request_log_flush

    return api_request_log_flush()


@shared_task(name="clinic.api_request_log_purge")
def api_request_log_purge_task() -> int:
    """Sundays 03:30: the partner API's request log past its retention (90 days) goes."""
    from .request_log import api_request_log_purge

    return api_request_log_purge()
