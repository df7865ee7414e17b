"""Company sign-in through OpenID Connect (mozilla-django-oidc), configured in portal/settings.py.

`claims` is pure (settings import it to check OIDC_ROLE_GROUPS); `provider` finds the identity
provider's endpoints; `backend` is the authentication backend the library calls.
"""
