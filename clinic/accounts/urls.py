"""Staff account pages (/account/…) and the two sign-in steps, which replace the admin's
own login and logout (/admin/login/, /admin/logout/): config/urls.py mounts them first."""

from django.urls import path
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import views as webauthn

from . import views

app_name = "accounts"

urlpatterns = [
    path("", views.security, name="security"),
    path("verify/", views.verify, name="verify_session"),
    path("mfa/setup/", views.mfa_setup, name="mfa_setup"),
    path("mfa/recovery-codes/", views.recovery_codes, name="recovery_codes"),
    path("mfa/recovery-codes/new/", views.recovery_codes_new, name="recovery_codes_new"),
    path("mfa/<str:kind>/<int:pk>/remove/", views.device_remove, name="device_remove"),
    path("sessions/<int:pk>/end/", views.session_end, name="session_end"),
    path("sessions/end-all/", views.sessions_end_all, name="sessions_end_all"),
    path("reauth/", views.reauth, name="reauth"),
    path("password/", views.PasswordChange.as_view(), name="password_change"),
    path("password/reset/", views.PasswordReset.as_view(), name="password_reset"),
    path("password/reset/sent/", views.PasswordResetDone.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirm.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/",
        views.PasswordResetComplete.as_view(),
        name="password_reset_complete",
    ),
    path("invitation/<str:token>/", views.invitation, name="invitation"),
]

#: Mounted at /admin/ before the admin site: the two sign-in steps and signing out.
sign_in_urlpatterns = [
    path("login/", views.sign_in, name="sign_in"),
    path("login/verify/", views.verify, name="verify"),
    path("logout/", views.sign_out, name="sign_out"),
    # The admin's "Change password" link: ours (it clears a forced change, and is audited).
    path("password_change/", views.PasswordChange.as_view(), name="password_change"),
]

#: django-otp-webauthn's JSON endpoints (passkey registration and sign-in) at /webauthn/.
webauthn_urlpatterns = [
    path(
        "registration/begin/",
        webauthn.BeginCredentialRegistrationView.as_view(),
        name="credential-registration-begin",
    ),
    path(
        "registration/complete/",
        webauthn.CompleteCredentialRegistrationView.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        webauthn.BeginCredentialAuthenticationView.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        webauthn.CompleteCredentialAuthenticationView.as_view(),
        name="credential-authentication-complete",
    ),
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="js-i18n-catalog",
    ),
]
