"""Binance error answers: the `{"code", "msg"}` envelope and the HTTP status of each code."""

from __future__ import annotations

# Messages as the real API words them (facts §3.3); `%s`-style slots are filled by callers.
MESSAGES: dict[int, str] = {
    -1000: "An unknown error occurred while processing the request.",
    -1001: "Internal error; unable to process your request. Please try again.",
    -1003: (
        "Too much request weight used; current limit is {limit} request weight per {window}. "
        "Please use WebSocket Streams for live updates to avoid polling the API."
    ),
    -1007: (
        "Timeout waiting for response from backend server. "
        "Send status unknown; execution status unknown."
    ),
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1099: "Not found, authenticated, or authorized",
    -1100: "Illegal characters found in parameter '{name}'; legal range is '{legal}'.",
    -1101: "Duplicate values for a parameter detected.",
    -1102: "Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
    -1105: "Parameter '{name}' was empty.",
    -1106: "Parameter '{name}' sent when not required.",
    -1116: "Invalid orderType.",
    -1120: "Invalid interval.",
    -1121: "Invalid symbol.",
    -1125: "This listenKey does not exist.",
    -1127: "More than {hours} hours between startTime and endTime.",
    -1128: "Combination of optional parameters invalid.",
    -1130: "Data sent for parameter '{name}' is not valid.",
    -1131: "recvWindow must be less than 60000",
    -2011: "Unknown order sent.",
    -2013: "Order does not exist.",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
    -3003: "Margin account does not exist.",
    -3011: "Your input date is invalid.",
    -3026: "Your input param is invalid.",
    -3027: "Not a valid margin asset.",
    -3028: "Not a valid margin pair.",
    -3044: "System busy.",
    -4047: "Time interval must be within 0-7 days",
    -11001: "Isolated margin account does not exist.",
}

EITHER_PARAM = "Param '{name}' or '{other}' must be sent, but both were empty/null!"
RATE_CAP = "Too many requests; current request has limited."
AHEAD_OF_SERVER = "Timestamp for this request was 1000ms ahead of the server's time."
# -1100 without a parameter name, as interestRateHistory answers a window it will not serve
ILLEGAL_PARAMETER = "Illegal characters found in a parameter."

# HTTP status per code where it is not 400 (facts §3.2).
_STATUS: dict[int, int] = {
    -1000: 500,
    -1001: 503,
    -1003: 429,
    -1007: 503,
    -1099: 404,
    -2014: 401,
    -2015: 401,
}


class ApiError(Exception):
    """A request the simulated API refuses: rendered as Binance's error JSON."""

    def __init__(self, code: int, msg: str | None = None, status: int | None = None) -> None:
        self.code = code
        self.msg = msg if msg is not None else MESSAGES.get(code, MESSAGES[-1000])
        self.status = status if status is not None else _STATUS.get(code, 400)
        super().__init__(f"{code} {self.msg}")

    @classmethod
    def param(cls, code: int, **slots: str) -> ApiError:
        """An error whose message names a parameter (or another slot) of the template."""
        return cls(code, MESSAGES[code].format(**slots))

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}
