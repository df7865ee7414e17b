"""Logging filters the settings' LOGGING installs."""

from __future__ import annotations

import logging


class RefusalWithoutTraceback(logging.Filter):
    """Log a refused request (403) as its one line: the traceback of a PermissionDenied says
    only that a permission check said no, and repeated for every refusal it buries real errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
