"""The team web app (FastAPI + Jinja2): ``create_app(review)``; users and roles in ``users``."""

from metasift.web.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
