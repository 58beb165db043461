"""Payment gateways (``payments`` providers): Asaas, Mercado Pago and PagBank.

Each module is one adapter of ``integrations.base.PaymentsProvider``: ``charge`` creates a
charge (PIX, boleto …) and returns what the patient pays with, ``get_charge`` reads the
gateway's current state as a ``PaymentUpdate``, ``refund`` gives money back, and the
webhook methods turn the gateway's notifications into ``PaymentUpdate`` items. Money is
``Decimal`` on our side and converted explicitly to each gateway's wire format (reais with
two decimals, or integer centavos). Notifications may arrive twice and out of order: the
billing layer makes them converge, these adapters only report what each one says.
"""
