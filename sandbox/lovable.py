"""The Lovable app's admin edge functions (Entrega's contract, docs/providers.md): create-user,
idempotent by e-mail and by Idempotency-Key, and deactivate-user."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from sandbox.core import Reply, Sandbox, bearer, json_body, new_uuid, now_iso

MIN_PASSWORD = 8
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": code, "message": message}


def _fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class Login(BaseModel):
    email: str
    password: str


def router(sandbox: Sandbox) -> APIRouter:
    api = APIRouter(prefix="/lovable", tags=["lovable"])

    def authenticate(request: Request) -> None:
        if bearer(request) != sandbox.secret("lovable_service_key"):
            raise Reply(401, error(401, "unauthorized", "Invalid service key"))

    @api.post("/create-user")
    async def create_user(request: Request) -> JSONResponse:
        authenticate(request)
        body = await json_body(request, error)
        await sandbox.fault("lovable", "create_user", request, error)
        state = sandbox.state
        key = request.headers.get("idempotency-key")
        if key and (seen := state.lovable_idempotency.get(key)):
            fingerprint, status, answer = seen
            if fingerprint != _fingerprint(body):
                raise Reply(
                    409,
                    error(409, "idempotency_key_reused", "Idempotency-Key used with another body"),
                )
            return JSONResponse(answer, status_code=status)
        email = str(body.get("email") or "").strip().lower()
        password = str(body.get("password") or "")
        full_name = str(body.get("full_name") or "").strip()
        order_id = str(body.get("order_id") or "").strip()
        problems = [
            message
            for failed, message in (
                (not _EMAIL.match(email), "email is invalid"),
                (len(password) < MIN_PASSWORD, f"password needs {MIN_PASSWORD}+ characters"),
                (not full_name, "full_name is required"),
                (not order_id, "order_id is required"),
            )
            if failed
        ]
        if problems:
            raise Reply(422, error(422, "invalid_body", "; ".join(problems)))
        existing = next((u for u in state.lovable_users.values() if u["email"] == email), None)
        if existing is not None:
            # Idempotent by e-mail: the password stays; a deactivated user is let back in. The
            # answer names the order whose request created the user (docs/providers.md).
            existing["active"] = True
            status, answer = (
                200,
                {
                    "user_id": existing["user_id"],
                    "created": False,
                    "order_id": existing.get("order_id"),
                },
            )
        else:
            user_id = new_uuid()
            state.lovable_users[user_id] = {
                "user_id": user_id,
                "email": email,
                "full_name": full_name,
                "order_id": order_id,
                "active": True,
                "created_at": now_iso(),
            }
            state.lovable_passwords[user_id] = password
            status, answer = 201, {"user_id": user_id, "created": True}
        if key:
            state.lovable_idempotency[key] = (_fingerprint(body), status, answer)
            sandbox.on_lost_answer(request, lambda: state.lovable_idempotency.pop(key, None))
        return JSONResponse(answer, status_code=status)

    @api.post("/deactivate-user")
    async def deactivate_user(request: Request) -> dict[str, Any]:
        authenticate(request)
        body = await json_body(request, error)
        await sandbox.fault("lovable", "deactivate_user", request, error)
        user = sandbox.state.lovable_users.get(str(body.get("user_id") or ""))
        if user is None:
            raise Reply(404, error(404, "user_not_found", "No user with this id"))
        user["active"] = False
        return {"user_id": user["user_id"], "active": False}

    return api


def control_router(sandbox: Sandbox) -> APIRouter:
    api = APIRouter(prefix="/_sandbox/lovable", tags=["control"])

    @api.post("/login")
    async def login(attempt: Login) -> dict[str, Any]:
        """Whether these credentials (e.g. from the e-mail a customer got) open the app."""
        state = sandbox.state
        email = attempt.email.strip().lower()
        user = next((u for u in state.lovable_users.values() if u["email"] == email), None)
        stored = state.lovable_passwords.get(user["user_id"]) if user else None
        if user is None or stored is None or not secrets.compare_digest(stored, attempt.password):
            raise Reply(401, {"error": {"code": "invalid_credentials", "message": "wrong login"}})
        if not user["active"]:
            raise Reply(403, {"error": {"code": "inactive", "message": "user is deactivated"}})
        return {"user_id": user["user_id"], "ok": True}

    return api
