"""The portal's whole-path benchmark (`manage.py benchmark --suite full`): a scratch database,
the portal under gunicorn, real Celery workers and the simulator over HTTP; figures as medians
and p95 with their ratios computed side by side in the same run."""
