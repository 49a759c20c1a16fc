"""What margin-etl keeps on disk, behind one face: the data directory (``DataDir``).

Beneath the SQL models and the flows, above the models: the Parquet lake and where it lives
(a local directory or an object store), the coverage ledger, the row fingerprints, the
data-dir lock, the crash points that fault tests aim at, and the one error type a person
can fix (``UserError``). Nothing here knows Prefect or HTTP.
"""

from storage.backends import FileVersion, LocalStorage, Storage, ensure_dir, make_private
from storage.coverage import LedgerRow, read_ledger
from storage.datadir import CoverageView, DataDir, RunStore
from storage.errors import UserError, first_line
from storage.lake import untrusted_files, validate_account_name

__all__ = [
    "CoverageView",
    "DataDir",
    "FileVersion",
    "LedgerRow",
    "LocalStorage",
    "RunStore",
    "Storage",
    "UserError",
    "ensure_dir",
    "first_line",
    "make_private",
    "read_ledger",
    "untrusted_files",
    "validate_account_name",
]
