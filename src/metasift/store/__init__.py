"""The review store: SQLAlchemy models, Alembic migrations, SQLite by default, PostgreSQL for a team."""

from metasift.store.db import Store, normalise_url
from metasift.store.models import Base

__all__ = ["Store", "Base", "normalise_url"]
