"""Errors the REST edge turns into ``{"error": CODE, "message": TEXT}`` with a status code."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, f"unknown_{what}", f"no {what} {ident!r}")
