"""Airflow's login in front of the platform's pages (the plugin FastAPI apps).

Airflow mounts a plugin's FastAPI app with ``app.mount()``: none of the API server's
router-level authentication reaches it, so every page would answer anonymous callers. Each
app therefore declares ``requires_view(<resource>)`` as an app-level dependency: the caller
is identified by Airflow's own ``get_user`` (the JWT in ``Authorization: Bearer`` or the
``_token`` cookie the UI sets, so the pages work inside the UI's iframe), and the auth
manager must allow reading the custom view named after the plugin
(``is_authorized_custom_view``: with the simple auth manager any role may, a user without a
role may not; with FAB or Keycloak it is a permission to grant). Anonymous callers get 401,
an unknown or expired token 401/403, a user without the permission 403.

Only the plugins import this module (it needs the API server's auth manager).
"""

from typing import Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, HTTPException, status

#: the custom views (resource names) of the platform's pages, one per plugin app
REPORTS_VIEW = "cm_reports"
VALIDATION_VIEW = "cm_validation"
CONSOLE_VIEW = "cm_console"


def requires_view(resource_name: str) -> Any:
    """A FastAPI dependency: an authenticated caller allowed to read ``resource_name``."""

    def check(user: GetUserDep) -> None:
        allowed = get_auth_manager().is_authorized_custom_view(
            method="GET", resource_name=resource_name, user=user
        )
        if not allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "无权访问该页面 (forbidden)")

    return Depends(check)
