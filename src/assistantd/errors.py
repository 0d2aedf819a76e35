"""The domain error tree. Each class carries its HTTP status, ``type`` and ``code``.

    APIError
    ├── InvalidRequestError      400 invalid_request_error (param names the field)
    │   └── ConflictingStateError 400: locked thread, wrong run state (never 409: SDK retries)
    ├── AuthenticationError      401 invalid_api_key
    ├── NotFoundError            404 "No <object> found with id '<id>'."
    ├── PayloadTooLargeError     413
    ├── RateLimitError           429 rate_limit_exceeded
    └── ServerError              500 server_error (the message never carries internals)
        └── ServiceUnavailableError 503: the database is out of reach; the SDK retries it

Services raise these; ``api/errors.py`` turns them into the OpenAI envelope once, at the edge.
"""

from __future__ import annotations


class APIError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def body(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(APIError):
    status = 400
    type = "invalid_request_error"


class ConflictingStateError(InvalidRequestError):
    """The object exists but its state forbids the operation (OpenAI answers 400)."""


class AuthenticationError(APIError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class NotFoundError(APIError):
    status = 404
    type = "invalid_request_error"

    def __init__(self, kind: str, object_id: str, *, param: str | None = None) -> None:
        super().__init__(f"No {kind} found with id '{object_id}'.", param=param)


class PayloadTooLargeError(InvalidRequestError):
    status = 413


class RateLimitError(APIError):
    status = 429
    type = "requests"  # OpenAI's type for request-rate limits ("tokens" for token limits)
    code = "rate_limit_exceeded"


class ServerError(APIError):
    status = 500
    type = "server_error"


class ServiceUnavailableError(ServerError):
    status = 503


class ConfigError(Exception):
    """The settings cannot work together; the command stops with this message."""
