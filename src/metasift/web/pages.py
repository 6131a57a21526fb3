"""Routes of the analyses and report, extraction, risk-of-bias and full-text pages.

``router(review, ...)`` is included by :func:`metasift.web.app.create_app`, which hands over its
sign-in, role, CSRF and rendering helpers so these pages follow the same rules as the others:
every write checks the role on the server and the session's CSRF token, and calls one library
function (through :mod:`metasift.web.page_services`), which audits it.

Roles: anyone signed in reads; ``manage`` (owner) runs the analyses and builds the report;
``manage`` also downloads the RIS/CSV exports (they hold every reviewer's decisions);
``screen`` (owner, reviewer) adds studies, extracts and handles full texts; ``resolve`` (owner,
resolver) reconciles extracted values; ``screen`` or ``resolve`` appraises risk of bias (the
library then checks the protocol's roles too).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from metasift.errors import MetasiftError
from metasift.web import page_services as P

# the report is our own HTML with inline CSS and images next to it; served sandboxed
REPORT_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


def _require(user, *permissions: str) -> None:
    if not any(user.can(p) for p in permissions):
        raise HTTPException(
            403, f"your role ({user.role}) cannot do this ({' or '.join(permissions)})"
        )


def _form(form) -> dict:
    return {k: v for k, v in form.items() if isinstance(v, str)}


def router(review, *, render, need, csrf, flash, max_upload_bytes: int) -> APIRouter:
    r = APIRouter()
    reader = Depends(need("read"))

    def not_found(exc: P.NotFound):
        return HTTPException(404, str(exc))

    # -- analyses and report ---------------------------------------------------------------------
    @r.get("/analyses", response_class=HTMLResponse)
    def analyses_page(request: Request, user=reader):
        return render(request, "analyses.html", v=P.analyses_view(review))

    @r.post("/analyses/run", dependencies=[Depends(csrf)])
    def analyses_run(request: Request, user=Depends(need("manage"))):
        result, paths = P.run_analyses_and_report(review, user.name)
        flash(
            request,
            f"analyses run ({len(result.pooled)} pooled); report rebuilt in {paths.out_dir.name}/",
        )
        return RedirectResponse("/analyses", status_code=303)

    @r.get("/out/{relpath:path}")
    def out_download(relpath: str, user=reader):
        try:
            path, media = P.out_file(review, relpath)
        except P.NotFound as exc:
            raise not_found(exc) from None
        headers = {}
        if path.suffix.lower() == ".html":
            headers["Content-Security-Policy"] = REPORT_CSP
        elif path.suffix.lower() in (".docx", ".csv", ".pdf"):
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(path.name)}"
        if path.suffix.lower() == ".svg":
            headers["Content-Security-Policy"] = (
                "sandbox; default-src 'none'; style-src 'unsafe-inline'"
            )
        return Response(path.read_bytes(), media_type=media, headers=headers)

    @r.get("/export/{fmt}")
    def export_download(fmt: str, what: str = "references", user=Depends(need("manage"))):
        # exports carry every reviewer's decisions and notes: owners only, and only when blinding
        # hides nothing from them
        try:
            data, media, name = P.export_bytes(review, fmt, what, user.name)
        except P.NotFound as exc:
            raise not_found(exc) from None
        return Response(
            data,
            media_type=media,
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
        )

    # -- extraction ------------------------------------------------------------------------------
    @r.get("/extraction", response_class=HTMLResponse)
    def extraction_list(request: Request, user=reader):
        return render(request, "extraction_list.html", v=P.studies_view(review))

    @r.post("/extraction/studies", dependencies=[Depends(csrf)])
    async def add_study(request: Request, user=Depends(need("screen"))):
        form = await request.form()
        refs = [int(x) for x in form.getlist("reference_id") if str(x).isdigit()]
        info = await run_in_threadpool(
            P.add_study,
            review,
            str(form.get("label", "")),
            str(form.get("design", "")),
            refs,
            user.name,
        )
        flash(request, f"study {info.label} added")
        return RedirectResponse(f"/extraction/{info.id}", status_code=303)

    def extraction_render(request, study_id, user, status_code=200, **kw):
        v = P.extraction_view(review, study_id, user.name, can_reconcile=user.can("resolve"), **kw)
        return render(request, "extraction.html", status_code, v=v)

    @r.get("/extraction/{study_id}", response_class=HTMLResponse)
    def extraction_page(request: Request, study_id: int, user=reader):
        try:
            return extraction_render(request, study_id, user)
        except P.NotFound as exc:
            raise not_found(exc) from None

    @r.post("/extraction/{study_id}", dependencies=[Depends(csrf)])
    async def extraction_save(request: Request, study_id: int, user=Depends(need("screen"))):
        form = _form(await request.form())
        try:
            n, errors = await run_in_threadpool(
                P.save_extraction, review, study_id, user.name, form
            )
        except P.NotFound as exc:
            raise not_found(exc) from None
        except MetasiftError as exc:
            errors, n = {"": str(exc)}, 0
        if errors:
            resp = extraction_render(request, study_id, user, 400, submitted=form, errors=errors)
            return resp
        flash(request, f"{n} value(s) saved" if n else "nothing changed")
        return RedirectResponse(f"/extraction/{study_id}", status_code=303)

    @r.post("/extraction/{study_id}/reconcile", dependencies=[Depends(csrf)])
    async def extraction_reconcile(request: Request, study_id: int, user=Depends(need("resolve"))):
        form = _form(await request.form())
        row = await run_in_threadpool(P.reconcile_cell, review, study_id, form, user.name)
        flash(request, f"{form.get('field', '')}: {row.value} (decided by {row.reviewer})")
        return RedirectResponse(f"/extraction/{study_id}#compare", status_code=303)

    # -- risk of bias ----------------------------------------------------------------------------
    @r.get("/rob", response_class=HTMLResponse)
    def rob_list(request: Request, user=reader):
        current, tools = P.rob_overview(review)
        return render(
            request, "rob_list.html", v=P.studies_view(review), current=current, tools=tools
        )

    @r.get("/rob/plot/{tool}.png")
    def rob_plot(tool: str, user=reader):
        try:
            png = P.traffic_light_png(review, tool)
        except P.NotFound as exc:
            raise not_found(exc) from None
        return Response(png, media_type="image/png")

    @r.get("/rob/{study_id}", response_class=HTMLResponse)
    def rob_page(request: Request, study_id: int, outcome: str = "", effect: str = "", user=reader):
        try:
            v = P.rob_view(review, study_id, outcome=outcome, effect=effect or None)
        except P.NotFound as exc:
            raise not_found(exc) from None
        return render(request, "rob.html", v=v)

    @r.post("/rob/{study_id}", dependencies=[Depends(csrf)])
    async def rob_save(request: Request, study_id: int, user=reader):
        _require(user, "screen", "resolve")
        form = _form(await request.form())
        outcome = form.get("outcome", "")
        if form.get("action") == "suggest":
            v = P.rob_view(
                review, study_id, outcome=outcome, effect=form.get("effect") or None, form=form
            )
            return render(request, "rob.html", v=v)
        try:
            a = await run_in_threadpool(
                P.save_rob, review, study_id, user.name, form, outcome=outcome
            )
        except P.NotFound as exc:
            raise not_found(exc) from None
        except MetasiftError as exc:
            v = P.rob_view(
                review, study_id, outcome=outcome, effect=form.get("effect") or None, form=form
            )
            v.error = str(exc)
            return render(request, "rob.html", 400, v=v)
        overall = a.overall.judgement if a.overall else ""
        flash(request, f"{a.study}: {a.tool} assessment saved (overall {overall})")
        q = f"?outcome={quote(outcome)}" if outcome else ""
        return RedirectResponse(f"/rob/{study_id}{q}", status_code=303)

    # -- full text -------------------------------------------------------------------------------
    def fulltext_render(request, user, status_code=200, error=""):
        stage = "full_text"
        return render(
            request,
            "fulltext.html",
            status_code,
            items=P.fulltext_items(review, user.name),
            reasons=review.protocol.exclusion_reasons(stage),
            max_mb=max_upload_bytes // (1024 * 1024),
            error=error,
        )

    @r.get("/fulltext", response_class=HTMLResponse)
    def fulltext_page(request: Request, user=reader):
        return fulltext_render(request, user)

    @r.post("/fulltext/link", dependencies=[Depends(csrf)])
    def fulltext_link(
        request: Request,
        reference_id: int = Form(...),
        location: str = Form(""),
        user=Depends(need("screen")),
    ):
        P.link_fulltext(review, reference_id, location, user.name)
        flash(request, f"#{reference_id}: full text linked")
        return RedirectResponse(f"/fulltext#ref-{reference_id}", status_code=303)

    @r.post("/fulltext/upload", dependencies=[Depends(csrf)])
    async def fulltext_upload(
        request: Request,
        file: UploadFile,
        reference_id: int = Form(...),
        user=Depends(need("screen")),
    ):
        head = await file.read(len(P.PDF_MAGIC))
        P.check_pdf(head)
        dest, location = P.fulltext_dest(review, reference_id)
        size = len(head)
        try:
            with open(dest, "wb") as fh:
                fh.write(head)
                while chunk := await file.read(1 << 20):
                    size += len(chunk)
                    if size > max_upload_bytes:
                        raise HTTPException(413, f"the file is over {max_upload_bytes} bytes")
                    fh.write(chunk)
            await run_in_threadpool(P.link_fulltext, review, reference_id, location, user.name)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        flash(request, f"#{reference_id}: PDF uploaded ({size // 1024} KB)")
        return RedirectResponse(f"/fulltext#ref-{reference_id}", status_code=303)

    @r.get("/fulltext/file/{name}")
    def fulltext_file(name: str, user=reader):
        try:
            path = P.fulltext_file(review, name)
        except P.NotFound as exc:
            raise not_found(exc) from None
        return Response(
            path.read_bytes(),
            media_type="application/pdf",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(path.name)}"},
        )

    @r.post("/fulltext/decide", dependencies=[Depends(csrf)])
    def fulltext_decide(
        request: Request,
        reference_id: int = Form(...),
        decision: str = Form(...),
        reason: str = Form(""),
        note: str = Form(""),
        user=Depends(need("screen")),
    ):
        if decision not in ("include", "exclude", "not_retrieved"):
            raise HTTPException(400, f"no full-text decision {decision!r} here")
        if decision != "exclude":
            reason = ""
        review.decide(reference_id, "full_text", user.name, decision, reason=reason, note=note)
        queues = getattr(request.app.state, "queues", None)
        if queues is not None:
            queues.decided(user.name, "full_text", relevant=decision == "include")
        flash(request, f"#{reference_id}: {decision}" + (f" ({reason})" if reason else ""))
        return RedirectResponse(f"/fulltext#ref-{reference_id}", status_code=303)

    return r
