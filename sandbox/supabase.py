"""Supabase Auth (GoTrue): the admin users API and the password grant, which issues HS256 JWTs
signed with SUPABASE_JWT_SECRET, as the real project would."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.core import Reply, Sandbox, bearer, json_body, new_uuid, now_iso
from settings import secret_matches

TOKEN_TTL_SECONDS = 3600
MIN_PASSWORD = 6
DEFAULT_PER_PAGE = 50
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"code": status, "error_code": code, "msg": message}


def router(sandbox: Sandbox) -> APIRouter:
    api = APIRouter(prefix="/supabase/auth/v1", tags=["supabase"])

    def authenticate(request: Request, *, admin: bool) -> None:
        key = sandbox.secret("supabase_service_key")
        if request.headers.get("apikey") != key:
            # Supabase's API gateway answers before GoTrue does, in its own shape.
            raise Reply(401, {"message": "Invalid API key"})
        if admin and bearer(request) != key:
            raise Reply(403, error(403, "not_admin", "User not allowed"))

    @api.post("/admin/users")
    async def create_user(request: Request) -> dict[str, Any]:
        authenticate(request, admin=True)
        body = await json_body(request, error)
        await sandbox.fault("supabase", "create_user", request, error)
        email = str(body.get("email") or "").strip().lower() or None
        phone = re.sub(r"\D", "", str(body.get("phone") or "")) or None
        if not email and not phone:
            raise Reply(400, error(400, "validation_failed", "Unable to validate email address"))
        if email and not _EMAIL.match(email):
            raise Reply(
                400,
                error(400, "validation_failed", "Unable to validate email address: invalid format"),
            )
        password = body.get("password")
        if password is not None and len(str(password)) < MIN_PASSWORD:
            raise Reply(
                422,
                error(
                    422, "weak_password", f"Password should be at least {MIN_PASSWORD} characters."
                ),
            )
        users = sandbox.state.auth_users.values()
        if email and any(u["email"] == email for u in users):
            raise Reply(
                422,
                error(
                    422,
                    "email_exists",
                    "A user with this email address has already been registered",
                ),
            )
        if phone and any(u["phone"] == phone for u in users):
            raise Reply(
                422,
                error(
                    422, "phone_exists", "A user with this phone number has already been registered"
                ),
            )
        created, user_id = now_iso(), new_uuid()
        user: dict[str, Any] = {
            "id": user_id,
            "aud": "authenticated",
            "role": "authenticated",
            "email": email or "",
            "phone": phone or "",
            "email_confirmed_at": created if email and body.get("email_confirm") else None,
            "phone_confirmed_at": created if phone and body.get("phone_confirm") else None,
            "app_metadata": {"provider": "email" if email else "phone", "providers": ["email"]},
            "user_metadata": body.get("user_metadata") or {},
            "identities": [],
            "created_at": created,
            "updated_at": created,
            "is_anonymous": False,
        }
        sandbox.state.auth_users[user_id] = user
        if password is not None:
            sandbox.state.auth_passwords[user_id] = str(password)
        return user

    @api.delete("/admin/users/{user_id}")
    async def delete_user(user_id: str, request: Request) -> dict[str, Any]:
        authenticate(request, admin=True)
        await sandbox.fault("supabase", "delete_user", request, error)
        if sandbox.state.auth_users.pop(user_id, None) is None:
            raise Reply(404, error(404, "user_not_found", "User not found"))
        sandbox.state.auth_passwords.pop(user_id, None)
        return {}

    @api.get("/admin/users")
    async def list_users(request: Request) -> JSONResponse:
        authenticate(request, admin=True)
        await sandbox.fault("supabase", "list_users", request, error)
        try:
            page = max(1, int(request.query_params.get("page") or 1))
            per_page = max(1, int(request.query_params.get("per_page") or DEFAULT_PER_PAGE))
        except ValueError:
            raise Reply(400, error(400, "validation_failed", "Bad Pagination Parameters")) from None
        users = list(sandbox.state.auth_users.values())
        if wanted := (request.query_params.get("filter") or "").lower():
            users = [u for u in users if wanted in u["email"] or wanted in u["phone"]]
        batch = users[(page - 1) * per_page : page * per_page]
        return JSONResponse(
            {"users": batch, "aud": "authenticated"}, headers={"X-Total-Count": str(len(users))}
        )

    @api.post("/token")
    async def token(request: Request) -> dict[str, Any]:
        authenticate(request, admin=False)
        grant = request.query_params.get("grant_type")
        if grant != "password":
            raise Reply(
                400, error(400, "unsupported_grant_type", f"unsupported grant_type {grant!r}")
            )
        body = await json_body(request, error)
        await sandbox.fault("supabase", "token", request, error)
        email = str(body.get("email") or "").strip().lower()
        user = next((u for u in sandbox.state.auth_users.values() if u["email"] == email), None)
        stored = sandbox.state.auth_passwords.get(user["id"]) if user else None
        given = str(body.get("password") or "")
        if user is None or stored is None or not secret_matches(stored, given):
            raise Reply(400, error(400, "invalid_credentials", "Invalid login credentials"))
        now = int(time.time())
        claims = {
            "sub": user["id"],
            "aud": "authenticated",
            "role": "authenticated",
            "email": user["email"],
            "phone": user["phone"],
            "iat": now,
            "exp": now + TOKEN_TTL_SECONDS,
            "session_id": new_uuid(),
        }
        access_token = jwt.encode(claims, sandbox.secret("supabase_jwt_secret"), algorithm="HS256")
        return {
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": TOKEN_TTL_SECONDS,
            "expires_at": now + TOKEN_TTL_SECONDS,
            "refresh_token": secrets.token_urlsafe(16),
            "user": user,
        }

    return api
