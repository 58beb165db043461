"""Errors of the billing app: one hierarchy, mapped to API errors in one place."""

from clinic.kernel.errors import ApplicationError


class BillingError(ApplicationError):
    code = "billing_error"


class InvalidPaymentTransition(BillingError):
    status_code = 409
    code = "invalid_payment_transition"


class RefundTooLarge(BillingError):
    status_code = 400
    code = "refund_too_large"


class GatewayUnavailable(BillingError):
    """No gateway could create the charge; the payment stays pending and can be retried."""

    status_code = 503
    code = "gateway_unavailable"


class PackageUnavailable(BillingError):
    status_code = 409
    code = "package_unavailable"


class InvoiceError(BillingError):
    status_code = 409
    code = "invoice_error"


class DiscountRefused(BillingError):
    """A discount code no one accepts, or a discount that would leave nothing to charge."""

    status_code = 400
    code = "discount_refused"
