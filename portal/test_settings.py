"""Settings for the test suite: local PostgreSQL and Redis unless the environment says otherwise."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("NEXTHINK_API_URL", "http://127.0.0.1:9")
os.environ.setdefault("NEXTHINK_TOKEN_URL", "http://127.0.0.1:9/oauth2/default/v1/token")
os.environ.setdefault("NEXTHINK_CLIENT_ID", "portal-test")
os.environ.setdefault("NEXTHINK_CLIENT_SECRET", "test-client-secret")
os.environ.setdefault("NEXTHINK_CLASSIC_URL", "http://127.0.0.1:9")
os.environ.setdefault("NEXTHINK_CLASSIC_USER", "portal-classic")
os.environ.setdefault("NEXTHINK_CLASSIC_PASSWORD", "test-classic-password")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
# The test client and the browser tests' live server speak plain HTTP.
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# Mails go to django.core.mail.outbox (in a worker process too); webhooks to local receivers.
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
os.environ.setdefault("WEBHOOKS_ALLOW_HTTP", "true")

from portal.settings import *  # noqa: E402,F403

CACHES["default"]["KEY_PREFIX"] = f"portal-test-{os.getpid()}"  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
