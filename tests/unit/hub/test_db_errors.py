"""What a database failure means to a client: unavailable (503) while the database is
unreachable or restarting, storage full (507) when its disk is, and anything else (a
constraint, a trigger's refusal) left to the caller; and how soon ``hub serve`` restarts a
worker that keeps exiting."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from hub.errors import ServiceUnavailable, StorageFull
from hub.store.db import database_error
from hub.supervisor import restart_delay


class DriverError(Exception):
    """What asyncpg's errors look like through SQLAlchemy's adaptor: a SQLSTATE attribute."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _error(cls: type[DBAPIError], message: str, sqlstate: str | None = None) -> DBAPIError:
    return cls("SELECT 1", None, DriverError(message, sqlstate))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_error(DBAPIError, "the database system is shutting down", "57P03"), ServiceUnavailable),
        (
            _error(DBAPIError, "terminating connection due to administrator command", "57P01"),
            ServiceUnavailable,
        ),
        (_error(DBAPIError, "connection does not exist", "08003"), ServiceUnavailable),
        (_error(OperationalError, "unable to open database file"), ServiceUnavailable),
        (_error(InterfaceError, "connection is closed"), ServiceUnavailable),
        (_error(OperationalError, "database or disk is full"), StorageFull),
        (
            _error(DBAPIError, "could not extend file: No space left on device", "53100"),
            StorageFull,
        ),
        (_error(DBAPIError, "audit_log is append-only", "P0001"), None),
        (_error(IntegrityError, "duplicate key value", "23505"), None),
    ],
)
def test_database_errors_map_to_what_the_client_can_do(
    exc: DBAPIError, expected: type[Exception] | None
) -> None:
    mapped = database_error(exc)
    if expected is None:
        assert mapped is None
    else:
        assert isinstance(mapped, expected)
        assert mapped.status in (503, 507)


def test_a_dropped_connection_is_unavailable() -> None:
    exc = DBAPIError("SELECT 1", None, DriverError("gone"), connection_invalidated=True)
    assert isinstance(database_error(exc), ServiceUnavailable)


def test_storage_full_says_what_to_do() -> None:
    err = StorageFull()
    assert (err.status, err.code) == (507, "storage_full")
    assert "storage is full" in err.message and "nothing was changed" in err.message


def test_a_worker_that_keeps_dying_is_restarted_less_and_less_often() -> None:
    delays = [restart_delay(n) for n in range(10)]
    assert delays[:2] == [0.0, 0.0]  # after a long run, or a first quick exit: at once
    assert delays[2:] == sorted(delays[2:]) and delays[2] > 0
    assert max(delays) == 60.0
