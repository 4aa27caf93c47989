"""The app's payment providers: Stripe when STRIPE_API_KEY is set, PayPal when its client id
and secret are, in that fallback order; none, and the buy button says payments are off."""

from __future__ import annotations

from flask import Flask, current_app, url_for

from app.extensions import db
from app.services.payment import PaymentProviderFactory, PaymentService, Urls
from app.services.payment_paypal import PayPalProvider
from app.services.payment_stripe import StripeProvider
from app.settings import Settings, get_settings

EXTENSION_KEY = "payments"


def build_factory(settings: Settings) -> PaymentProviderFactory:
    """The providers the settings configure, Stripe first."""
    factory = PaymentProviderFactory()
    if settings.stripe_api_key:
        factory.register(
            StripeProvider(
                settings.stripe_api_key,
                api_base=settings.stripe_api_base,
                timeout=settings.payment_timeout,
            )
        )
    if settings.paypal_client_id and settings.paypal_client_secret:
        factory.register(
            PayPalProvider(
                settings.paypal_client_id,
                settings.paypal_client_secret,
                api_base=settings.paypal_api_base,
                timeout=settings.payment_timeout,
            )
        )
    return factory


def init_payments(app: Flask, settings: Settings) -> PaymentService:
    """Build the service once per app; tests may register other providers on its factory."""
    service = PaymentService(build_factory(settings), db.transaction, currency=settings.currency)
    app.extensions[EXTENSION_KEY] = service
    return service


def get_payment_service(app: Flask | None = None) -> PaymentService:
    service: PaymentService = (app or current_app).extensions[EXTENSION_KEY]
    return service


def payment_urls() -> Urls:
    """Where PayPal sends the buyer back: this app's payment pages, at its public address."""
    base = get_settings().external_base
    return Urls(
        return_url=lambda pid: base + url_for("payments.paypal_return", payment_id=pid),
        cancel_url=lambda pid: base + url_for("payments.show", payment_id=pid),
    )


def publishable_key(settings: Settings) -> str | None:
    """The key Stripe.js is loaded with: STRIPE_PUBLISHABLE_KEY, or for localstripe any."""
    if settings.stripe_publishable_key:
        return settings.stripe_publishable_key
    if settings.stripe_api_key and settings.stripe_api_base:  # a local fake takes any key
        return "pk_test_localstripe"
    return None
