"""Alembic environment: metasift passes its own connection in ``config.attributes``."""

from alembic import context

from metasift.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` run by hand with -x url=...
        from sqlalchemy import create_engine

        url = context.get_x_argument(as_dictionary=True).get("url")
        engine = create_engine(url)
        with engine.begin() as conn:
            context.configure(
                connection=conn, target_metadata=target_metadata, render_as_batch=True
            )
            context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    context.run_migrations()


run_migrations_online()
