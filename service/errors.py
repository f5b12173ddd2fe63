"""One place that turns errors into JSON for the API and pages for people."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

MESSAGES = {
    400: "请求格式不正确。",
    401: "请先登录。",
    403: "您没有权限进行此操作。",
    404: "您访问的页面不存在。",
    405: "不支持该请求方式。",
    413: "提交的内容过大，请精简后再试。",
    415: "请以 JSON 格式提交。",
    429: "请求过于频繁，请稍后再试。",
    500: "服务暂时出现问题，请稍后再试。",
}
# JSON nested a thousand levels deep (a 2 KB body): the client's fault, not ours.
TOO_DEEP = "请求格式不正确：内容嵌套层数过多。"


class ApiError(Exception):
    """A client error on the API, with a plain Chinese message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _respond(status: int, message: str):  # type: ignore[no-untyped-def]
    if _wants_json():
        return jsonify(error=message), status
    return render_template("error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(ApiError)
    def handle_api_error(exc: ApiError):  # type: ignore[no-untyped-def]
        return _respond(exc.status, exc.message)

    @app.errorhandler(CSRFError)
    def handle_csrf(exc: CSRFError):  # type: ignore[no-untyped-def]
        return _respond(400, "页面已过期或请求来源无效，请刷新页面后重试。")

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):  # type: ignore[no-untyped-def]
        status = exc.code or 500
        body, code = _respond(status, MESSAGES.get(status, exc.description or MESSAGES[500]))
        response = app.make_response((body, code))
        # Keep what the exception says about the request, e.g. Allow on a 405, Retry-After on a 429.
        for name, value in exc.get_headers():
            if name.lower() in ("allow", "retry-after"):
                response.headers[name] = value
        return response

    @app.errorhandler(OverflowError)
    def handle_overflow(exc: OverflowError):  # type: ignore[no-untyped-def]
        # An id or page number beyond any stored value (99999999999999999999): not found.
        return _respond(404, MESSAGES[404])

    @app.errorhandler(RecursionError)
    def handle_nesting(exc: RecursionError):  # type: ignore[no-untyped-def]
        # JSON nested a thousand levels deep (a 2 KB body): the client's fault, not ours, and
        # not worth a traceback in the log per request.
        return _respond(400, TOO_DEEP)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        app.logger.exception("unhandled error on %s", request.path)
        return _respond(500, MESSAGES[500])
