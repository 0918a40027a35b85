"""Google Sheets through gspread, with service-account credentials from the environment.

``PLATFORM_KIT_GOOGLE_API_URL`` replaces Google's hosts (for a proxy or the local emulator in
:mod:`platform_kit.testing.sheets_emulator`); with it set and no credentials, requests go
unauthenticated. gspread keeps its URLs as module constants, so the host is rewritten in the
``requests`` session it is given rather than by patching gspread.
"""

from __future__ import annotations

from typing import Any

import requests

from platform_kit import env
from platform_kit.config import GoogleSource, SheetConfig
from platform_kit.errors import SourceError
from platform_kit.retry import retry
from platform_kit.sheets import RawSheet, SheetReader

GOOGLE_HOSTS = ("https://sheets.googleapis.com", "https://www.googleapis.com")
SCOPES = (
    "https://www.googleapis.com/auth/spreadsheets.readonly",
    "https://www.googleapis.com/auth/drive.metadata.readonly",
)
RETRIED_STATUS = {408, 429, 500, 502, 503, 504}


class _RewritingSession(requests.Session):
    """Sends Google API requests to another base URL, through an inner (authorized) session."""

    def __init__(self, inner: requests.Session, base_url: str | None) -> None:
        super().__init__()
        self.inner = inner
        self.base_url = base_url.rstrip("/") if base_url else None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        url = url.decode() if isinstance(url, bytes) else url
        if self.base_url:
            for host in GOOGLE_HOSTS:
                if url.startswith(host):
                    url = self.base_url + url[len(host) :]
        kwargs.setdefault("timeout", 30)
        return self.inner.request(method, url, *args, **kwargs)


def google_session() -> requests.Session:
    """A session authorized with the service account, or plain when only an API URL is set."""
    base_url = env.get(env.PLATFORM_KIT_GOOGLE_API_URL)
    key_file = env.get(env.GOOGLE_APPLICATION_CREDENTIALS)
    if key_file:
        from google.auth.exceptions import GoogleAuthError
        from google.auth.transport.requests import AuthorizedSession
        from google.oauth2.service_account import Credentials

        try:
            credentials = Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                key_file, scopes=list(SCOPES)
            )
        except (OSError, ValueError, GoogleAuthError) as exc:
            raise SourceError(
                "GOOGLE_APPLICATION_CREDENTIALS does not point at a readable service-account key",
                hint="download the JSON key of the service account and set the variable to its path",
            ) from exc
        inner: requests.Session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    elif base_url:
        inner = requests.Session()
    else:
        raise SourceError(
            "reading Google Sheets needs GOOGLE_APPLICATION_CREDENTIALS",
            hint="set it to the service account's JSON key file, shared on the spreadsheet",
        )
    return _RewritingSession(inner, base_url)


class GoogleSheetReader(SheetReader):
    def __init__(self, session: requests.Session | None = None, attempts: int = 5) -> None:
        self.session = session
        self.attempts = attempts

    def read(self, sheet: SheetConfig) -> RawSheet:
        import gspread

        assert isinstance(sheet.source, GoogleSource)
        source = sheet.source
        client = gspread.Client(auth=None, session=self.session or google_session())  # type: ignore[arg-type]

        def fetch() -> tuple[list[list[Any]], str]:
            book = client.open_by_key(source.spreadsheet)
            tab = book.worksheet(source.worksheet) if source.worksheet else book.sheet1
            return tab.get_all_values(), book.get_lastUpdateTime()

        try:
            values, revision = retry(
                fetch,
                transient=_transient,
                what=f"read sheet {sheet.name!r}",
                attempts=self.attempts,
            )
        except gspread.exceptions.SpreadsheetNotFound as exc:
            raise SourceError(
                f"sheet {sheet.name!r}: spreadsheet {source.spreadsheet!r} not found",
                hint="check the key in platform.yaml and share the spreadsheet with the service account",
            ) from exc
        except gspread.exceptions.WorksheetNotFound as exc:
            raise SourceError(
                f"sheet {sheet.name!r}: spreadsheet {source.spreadsheet!r} has no worksheet "
                f"{source.worksheet!r}",
                hint="fix 'source.worksheet' in platform.yaml",
            ) from exc
        except gspread.exceptions.APIError as exc:
            raise SourceError(_api_error(sheet.name, exc)) from exc
        except PermissionError as exc:  # gspread's translation of a 403 on open_by_key
            raise SourceError(_api_error(sheet.name, exc, status=403)) from exc
        except requests.RequestException as exc:
            raise SourceError(
                f"sheet {sheet.name!r}: Google Sheets is unreachable ({type(exc).__name__})"
            ) from exc
        header, rows = (values[0], values[1:]) if values else ([], [])
        return RawSheet(header=header, rows=rows, source=source.id, revision=revision)

    def revision(self, sheet: SheetConfig) -> str | None:
        """The spreadsheet's ``modifiedTime``: one Drive metadata call, no cell is read."""
        assert isinstance(sheet.source, GoogleSource)
        session = self.session or google_session()
        url = f"https://www.googleapis.com/drive/v3/files/{sheet.source.spreadsheet}"
        params = {"fields": "modifiedTime", "supportsAllDrives": "true"}

        def fetch() -> str | None:
            response = session.get(url, params=params)
            response.raise_for_status()
            value = response.json().get("modifiedTime")
            return str(value) if value else None

        try:
            return retry(fetch, transient=_transient_http, what="ask Drive", attempts=self.attempts)
        except requests.HTTPError as exc:  # the same words as a failed read
            if _status(exc) == 404:
                raise SourceError(
                    f"sheet {sheet.name!r}: spreadsheet {sheet.source.spreadsheet!r} not found",
                    hint="check the key in platform.yaml and share the spreadsheet with the "
                    "service account",
                ) from exc
            raise SourceError(_api_error(sheet.name, exc)) from exc
        except requests.RequestException as exc:
            raise SourceError(
                f"sheet {sheet.name!r}: Google Sheets is unreachable ({type(exc).__name__})"
            ) from exc


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    return int(getattr(response, "status_code", 0) or 0)


def _transient(exc: BaseException) -> bool:
    import gspread

    if isinstance(exc, gspread.exceptions.APIError):
        return _status(exc) in RETRIED_STATUS
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def _transient_http(exc: BaseException) -> bool:
    if isinstance(exc, requests.HTTPError):
        return _status(exc) in RETRIED_STATUS
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def _api_error(sheet: str, exc: Exception, status: int = 0) -> str:
    status = status or _status(exc)
    if status in (401, 403):
        return (
            f"sheet {sheet!r}: Google refused the credentials (HTTP {status}); share the "
            "spreadsheet with the service account and check GOOGLE_APPLICATION_CREDENTIALS"
        )
    if status in RETRIED_STATUS:
        return f"sheet {sheet!r}: Google Sheets kept answering HTTP {status}; try again later"
    return f"sheet {sheet!r}: Google Sheets answered HTTP {status}"
