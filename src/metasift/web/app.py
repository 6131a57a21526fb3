"""The team web app: ``create_app(review)`` returns a FastAPI app over one review project.

Route handlers only check who is asking, call one library function and render a template; the
screening rules (who may decide, blinding, conflicts) are the library's, so the browser can never
get around them. Every state-changing request needs the session's CSRF token.
"""

from __future__ import annotations

import os
import secrets
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware

from metasift.errors import MetasiftError, StoreBusy
from metasift.protocol import STAGES
from metasift.screening.decisions import INCLUDE_LIKE
from metasift.web import page_services, pages, services, users
from metasift.web.security import SECURITY_HEADERS, LoginThrottle, new_token, tokens_match

HERE = Path(__file__).resolve().parent
SECRET_FILE = ".metasift-web-secret"
SESSION_MAX_AGE = 12 * 3600
# how long a decision made in the event loop may wait for the store's write lock
# before it is handed to a worker thread (see the screening routes)
INLINE_LOCK_WAIT = 0.05
STAGE_LABELS = {"title_abstract": "Title / abstract", "full_text": "Full text"}


class LoginRequired(Exception):
    pass


def project_secret(folder: Path) -> str:
    """The session-signing key: $METASIFT_WEB_SECRET, else a random key kept in the project folder
    (so several worker processes sign alike and sessions survive a restart)."""
    env = os.environ.get("METASIFT_WEB_SECRET")
    if env:
        return env
    path = Path(folder) / SECRET_FILE
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        except FileExistsError:
            pass
    return path.read_text().strip()


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (by Content-Length, and while streaming)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            resp = Response("Request body too large", status_code=413)
            return await resp(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, "Request body too large")
            return message

        return await self.app(scope, limited, send)


class SecurityHeaders:
    """Add the security headers to every response (and ``Cache-Control: no-store`` outside
    /static/). A plain ASGI middleware: it only edits the response start message, where an
    ``@app.middleware("http")`` function would wrap each request in a task and streams."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    headers.setdefault(k, v)
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        return await self.app(scope, receive, send_with_headers)


def create_app(
    review,
    *,
    secret_key: str | None = None,
    max_upload_bytes: int = services.MAX_UPLOAD_BYTES,
    throttle: LoginThrottle | None = None,
    https_only: bool = False,
    warm: bool = True,
) -> FastAPI:
    """A FastAPI app serving ``review`` (an open :class:`~metasift.review.Review`).

    With ``warm`` (the default), the server's start-up builds every screening user's queue
    (features of the references, first model) before the first request is taken."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm:
            from starlette.concurrency import run_in_threadpool

            names = [u.name for u in users.list_users(review.store) if u.can("screen")]
            await run_in_threadpool(app.state.queues.warm, names)
        yield

    app = FastAPI(
        title="metasift", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.review = review
    app.state.queues = services.QueueRegistry(review)
    app.state.throttle = throttle or LoginThrottle()
    store = review.store
    protocol = review.protocol

    # the templates ship with the package: no check of their files' times on every page
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, auto_reload=False
    )
    env.filters["highlight"] = lambda text: services.highlight(
        text, protocol.screening.keywords_include, protocol.screening.keywords_exclude
    )
    env.globals["served_path"] = page_services.served_path
    templates = Jinja2Templates(env=env)

    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key or project_secret(review.path),
        session_cookie="metasift_session",
        max_age=SESSION_MAX_AGE,
        same_site="strict",
        https_only=https_only,
    )
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes + 64 * 1024)

    app.add_middleware(SecurityHeaders)

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    # -- helpers ---------------------------------------------------------------------------------
    def csrf_token(request: Request) -> str:
        tok = request.session.get("csrf")
        if not tok:
            tok = request.session["csrf"] = new_token()
        return tok

    def flash(request: Request, message: str, kind: str = "ok") -> None:
        request.session.setdefault("flash", [])
        request.session["flash"] = [*request.session["flash"][-4:], [kind, message]]

    def render(request: Request, name: str, status_code: int = 200, **ctx) -> HTMLResponse:
        ctx.update(
            user=ctx.get("user", getattr(request.state, "user", None)),
            csrf=csrf_token(request),
            flashes=request.session.pop("flash", []),
            stages=STAGES,
            stage_labels=STAGE_LABELS,
            project=review.path.name,
        )
        return templates.TemplateResponse(request, name, ctx, status_code=status_code)

    def current_user(request: Request) -> users.AppUser | None:
        user = users.get_user(store, request.session.get("user", ""))
        request.state.user = user
        return user

    def need(permission: str):
        def dep(request: Request) -> users.AppUser:
            user = current_user(request)
            if user is None:
                raise LoginRequired()
            if not user.can(permission):
                raise HTTPException(403, f"your role ({user.role}) cannot do this ({permission})")
            return user

        return dep

    async def csrf(request: Request) -> None:
        form = await request.form()
        given = form.get("csrf_token") or request.headers.get("x-csrf-token")
        if not tokens_match(request.session.get("csrf"), given):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")

    def check_stage(stage: str) -> str:
        if stage not in STAGES:
            raise HTTPException(404, f"no stage {stage!r}")
        return stage

    # -- errors ----------------------------------------------------------------------------------
    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired):
        if request.method == "GET":
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return render(request, "error.html", 401, message="please sign in", user=None)

    @app.exception_handler(MetasiftError)
    async def _user_error(request: Request, exc: MetasiftError):
        return render(request, "error.html", 400, message=str(exc))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        resp = render(request, "error.html", exc.status_code, message=str(exc.detail))
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    # -- sign in / out ---------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/"):
        return render(request, "login.html", next=_safe_next(next), user=None)

    @app.post("/login", dependencies=[Depends(csrf)])
    def login(
        request: Request,
        name: str = Form(""),
        password: str = Form(""),
        next: str = Form("/"),
    ):
        throttle: LoginThrottle = app.state.throttle
        wait = throttle.retry_after(name)
        if wait > 0:
            raise HTTPException(
                429,
                f"too many wrong passwords for {name!r}: try again in {int(wait) + 1} s",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        origin = request.client.host if request.client else ""
        user = users.authenticate(store, name, password, origin=origin)
        if user is None:
            throttle.failed(name)
            return render(
                request,
                "login.html",
                401,
                next=_safe_next(next),
                user=None,
                error="wrong name or password",
            )
        throttle.succeeded(name)
        request.session.clear()  # no session fixation: a fresh session and CSRF token
        request.session["user"] = user.name
        request.session["csrf"] = new_token()
        return RedirectResponse(_safe_next(next), status_code=303)

    @app.post("/logout", dependencies=[Depends(csrf)])
    def logout(request: Request):
        name = request.session.get("user")
        if name:
            users.record_logout(store, name)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- dashboard -------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def dashboard(request: Request, user=Depends(need("read"))):
        return render(request, "dashboard.html", d=services.dashboard(review))

    # -- screening -------------------------------------------------------------------------------
    # The two requests a reviewer repeats hundreds of times in a session are plain Starlette
    # routes: FastAPI's resolution of dependencies and form parameters cost a quarter of their
    # CPU. They make the same checks as the other routes, in the same order: the CSRF token
    # (POST), the user and role (``need``), the stage, the form fields (422 when malformed).
    #
    # Both answer in the event loop itself when that cannot wait on anything slow, and otherwise
    # in a worker thread as every other route does. On a busy server with a few cores the hop to
    # a thread and back, and the threads' contention for the GIL, cost a fifth of each request's
    # CPU. "Cannot wait": the reviewer's queue is built and current (a rebuild takes seconds),
    # and a decision's write may wait for the store's write lock at most INLINE_LOCK_WAIT (a
    # longer writer such as an import makes it fall back to a thread, which then waits as long
    # as it takes).
    def screen_page(request: Request, stage: str, now: bool = False, seen: int | None = None):
        user = need("screen")(request)
        check_stage(stage)
        queues = app.state.queues
        if now:
            page = queues.screen_now(user.name, stage, seen=seen)
        else:
            page = queues.screen(user.name, stage, seen=seen)
        if page is None:
            return None
        cand = page.candidate
        # the candidate is undecided by this reviewer: no decisions are shown on this page at all
        ref = services.reference_card(review, cand.reference, stage) if cand else None
        return render(
            request,
            "screen.html",
            stage=stage,
            cand=cand,
            ref=ref,
            progress={"decided": page.decided, "eligible": page.eligible},
            reasons=protocol.exclusion_reasons(stage),
            reason_required=protocol.screening.reason_required(stage),
        )

    async def screen(request: Request):
        stage = request.path_params["stage"]
        # the page right after the user's own decision (the decision route's redirect) may
        # come from this process's index without a read when it holds that decision
        # (QueueRegistry.screen); any other visit reads the store
        mark = request.session.pop("seen", None)
        seen = mark[1] if isinstance(mark, list) and len(mark) == 2 and mark[0] == stage else None
        page = screen_page(request, stage, now=True, seen=seen)
        if page is None:
            page = await run_in_threadpool(screen_page, request, stage, False, seen)
        return page

    app.router.add_route("/screen/{stage}", screen, methods=["GET"])

    def record_decision(
        request: Request, stage: str, form, lock_wait: float | None = None
    ) -> RedirectResponse:
        user = need("screen")(request)
        check_stage(stage)
        try:
            reference_id = int(form.get("reference_id", ""))
        except ValueError:
            raise HTTPException(422, "reference_id must be a whole number") from None
        decision = form.get("decision")
        if not isinstance(decision, str) or not decision:
            raise HTTPException(422, "say which decision (decision)")
        reason, note = (str(form.get(k, "")) for k in ("reason", "note"))
        if decision != "exclude":
            reason = ""
        row = review.decide(
            reference_id, stage, user.name, decision, reason=reason, note=note, lock_wait=lock_wait
        )
        request.session["seen"] = [stage, row.id]
        app.state.queues.decided(user.name, stage, relevant=decision in INCLUDE_LIKE)
        flash(request, f"#{reference_id}: {decision}" + (f" ({reason})" if reason else ""))
        return RedirectResponse(f"/screen/{stage}", status_code=303)

    async def decide(request: Request):
        await csrf(request)
        form = await request.form()
        stage = request.path_params["stage"]
        try:
            return record_decision(request, stage, form, lock_wait=INLINE_LOCK_WAIT)
        except StoreBusy:  # nothing was written: wait for the lock in a thread
            return await run_in_threadpool(record_decision, request, stage, form)

    app.router.add_route("/screen/{stage}/decide", decide, methods=["POST"])

    @app.post("/screen/{stage}/undo", dependencies=[Depends(csrf)])
    def undo(request: Request, stage: str, user=Depends(need("screen"))):
        check_stage(stage)
        last = review.undo(stage, user.name)
        app.state.queues.decided(user.name, stage)
        flash(
            request,
            f"undid your {last.decision} on #{last.reference_id}" if last else "nothing to undo",
        )
        return RedirectResponse(f"/screen/{stage}", status_code=303)

    @app.post("/screen/full_text/link", dependencies=[Depends(csrf)])
    def fulltext_link(
        request: Request,
        reference_id: int = Form(...),
        location: str = Form(""),
        user=Depends(need("screen")),
    ):
        services.add_fulltext_link(review, reference_id, location, user.name)
        flash(request, f"#{reference_id}: full text linked")
        return RedirectResponse("/screen/full_text", status_code=303)

    @app.get("/reference/{stage}/{reference_id}", response_class=HTMLResponse)
    def reference(request: Request, stage: str, reference_id: int, user=Depends(need("read"))):
        check_stage(stage)
        ref = services.reference_view(review, reference_id, stage, user.name)
        return render(request, "reference.html", stage=stage, ref=ref)

    # -- conflicts -------------------------------------------------------------------------------
    @app.get("/conflicts", response_class=HTMLResponse)
    def conflicts(request: Request, stage: str = "title_abstract", user=Depends(need("resolve"))):
        check_stage(stage)
        return render(
            request,
            "conflicts.html",
            stage=stage,
            items=services.conflict_views(review, stage, user.name),
            reasons=protocol.exclusion_reasons(stage),
        )

    @app.post("/conflicts/resolve", dependencies=[Depends(csrf)])
    def resolve(
        request: Request,
        stage: str = Form(...),
        reference_id: int = Form(...),
        decision: str = Form(...),
        reason: str = Form(""),
        note: str = Form(""),
        user=Depends(need("resolve")),
    ):
        check_stage(stage)
        if decision != "exclude":
            reason = ""
        review.resolve(reference_id, stage, user.name, decision, reason=reason, note=note)
        flash(request, f"#{reference_id} resolved: {decision}")
        return RedirectResponse(f"/conflicts?stage={stage}", status_code=303)

    # -- import ----------------------------------------------------------------------------------
    @app.get("/import", response_class=HTMLResponse)
    def import_page(request: Request, user=Depends(need("import"))):
        return render(
            request,
            "import.html",
            report=None,
            sources=review.status().sources,
            suffixes=services.UPLOAD_SUFFIXES,
            max_mb=max_upload_bytes // (1024 * 1024),
        )

    @app.post("/import", dependencies=[Depends(csrf)])
    async def import_upload(
        request: Request,
        file: UploadFile,
        database: str = Form(...),
        searched: str = Form(""),
        query: str = Form(""),
        lenient: bool = Form(False),
        user=Depends(need("import")),
    ):
        dest = services.incoming_path(review.path, file.filename or "")
        size = 0
        try:
            with open(dest, "wb") as fh:
                while chunk := await file.read(1 << 20):
                    size += len(chunk)
                    if size > max_upload_bytes:
                        raise HTTPException(413, f"the file is over {max_upload_bytes} bytes")
                    fh.write(chunk)
            if size == 0:
                raise MetasiftError("the uploaded file is empty")
            from starlette.concurrency import run_in_threadpool

            report = await run_in_threadpool(
                services.import_upload,
                review,
                dest,
                file.filename or "",
                database=database.strip(),
                searched=searched.strip(),
                query=query,
                lenient=lenient,
                actor=user.name,
            )
        finally:
            dest.unlink(missing_ok=True)
        app.state.queues = services.QueueRegistry(review)
        return render(
            request,
            "import.html",
            report=report,
            sources=review.status().sources,
            suffixes=services.UPLOAD_SUFFIXES,
            max_mb=max_upload_bytes // (1024 * 1024),
        )

    # -- analyses and report, extraction, risk of bias, full text (metasift.web.pages) -----------
    app.include_router(
        pages.router(
            review,
            render=render,
            need=need,
            csrf=csrf,
            flash=flash,
            max_upload_bytes=max_upload_bytes,
        )
    )
    return app


def _safe_next(target: str) -> str:
    """Only same-site paths after sign-in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` with several workers: the project folder comes from
    $METASIFT_WEB_PROJECT and the store URL from $METASIFT_DB (default: the folder's SQLite)."""
    from metasift.review import Review

    folder = os.environ.get("METASIFT_WEB_PROJECT")
    if not folder:
        raise MetasiftError("set METASIFT_WEB_PROJECT to the project folder")
    review = Review.open(folder, db=os.environ.get("METASIFT_DB") or None, actor="web")
    no_delay_on_listeners()
    return create_app(review)


def no_delay_on_listeners() -> int:
    """Turn Nagle's algorithm off on this process's server TCP sockets; returns how many.

    ``uvicorn --workers N`` binds the socket in the supervisor and hands it to each worker with
    ``proto`` 0, so asyncio does not set ``TCP_NODELAY`` on the connections it accepts (uvicorn
    issue 3149). Every keep-alive response whose headers and body go out as two writes then
    waits for the client's delayed ACK: about 40 ms on Linux, on every page after the first.
    Accepted sockets inherit the option from the server socket, so setting it there is enough.
    When the factory runs, that socket is bound but not yet listening (the worker listens
    after loading the app): a bound TCP socket with no peer. (Linux only; elsewhere this finds
    nothing and changes nothing.)"""
    import socket

    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return 0
    n = 0
    for fd in fds:
        try:
            sock = socket.socket(fileno=fd)
        except OSError:  # not a socket (or already closed)
            continue
        try:
            if (
                sock.family in (socket.AF_INET, socket.AF_INET6)
                and sock.type == socket.SOCK_STREAM
                and sock.getsockname()[1] != 0
                and not _has_peer(sock)
            ):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                n += 1
        except OSError:
            pass
        finally:
            sock.detach()  # the descriptor stays open and owned by whoever had it
    return n


def _has_peer(sock) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True
